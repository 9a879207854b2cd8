//! Parsing of the annotated item: syntax only.

use proc_macro2::TokenStream;
use syn::{Item, ItemImpl, ItemTrait};

/// The two forms `#[endpoint]` and `#[notifications]` accept.
pub(crate) enum Input {
    Impl(ItemImpl),
    Trait(ItemTrait),
}

pub(crate) fn parse(item: TokenStream) -> syn::Result<Input> {
    parse_for(item, "endpoint")
}

/// Parses the item under `#[macro_name]`.
pub(crate) fn parse_for(item: TokenStream, macro_name: &str) -> syn::Result<Input> {
    match syn::parse2::<Item>(item)? {
        Item::Impl(item) => Ok(Input::Impl(item)),
        Item::Trait(item) => Ok(Input::Trait(item)),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("`#[{macro_name}]` goes on an inherent `impl` block or on a trait"),
        )),
    }
}
