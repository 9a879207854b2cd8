//! Parsing of the annotated item: syntax only.

use proc_macro2::TokenStream;
use syn::{Item, ItemImpl, ItemTrait};

/// The two forms `#[endpoint]` accepts.
pub(crate) enum Input {
    Impl(ItemImpl),
    Trait(ItemTrait),
}

pub(crate) fn parse(item: TokenStream) -> syn::Result<Input> {
    match syn::parse2::<Item>(item)? {
        Item::Impl(item) => Ok(Input::Impl(item)),
        Item::Trait(item) => Ok(Input::Trait(item)),
        other => Err(syn::Error::new_spanned(
            other,
            "`#[endpoint]` goes on an inherent `impl` block or on a trait",
        )),
    }
}
