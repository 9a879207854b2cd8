//! The user's own item, re-emitted.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{
    Attribute, FnArg, ImplItem, ItemTrait, ReturnType, Signature, TraitItem, TraitItemFn, TypeParamBound, parse_quote,
};

use super::Generator;
use crate::args::RPC_ATTR;
use crate::input::Input;

fn strip_rpc_attrs(attrs: &mut Vec<Attribute>) {
    attrs.retain(|attr| !attr.path().is_ident(RPC_ATTR));
}

/// Strips `#[rpc]` from a method and its arguments.
fn strip_signature(attrs: &mut Vec<Attribute>, sig: &mut Signature) {
    strip_rpc_attrs(attrs);
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            strip_rpc_attrs(&mut typed.attrs);
        }
    }
}

/// The item as written, minus our `#[rpc]` attributes.
pub(super) fn stripped(input: &Input) -> TokenStream {
    match input {
        Input::Impl(item) => {
            let mut item = item.clone();
            for member in &mut item.items {
                if let ImplItem::Fn(method) = member {
                    strip_signature(&mut method.attrs, &mut method.sig);
                }
            }
            item.into_token_stream()
        }
        Input::Trait(item) => {
            let mut item = item.clone();
            for member in &mut item.items {
                if let TraitItem::Fn(method) = member {
                    strip_signature(&mut method.attrs, &mut method.sig);
                }
            }
            item.into_token_stream()
        }
    }
}

impl Generator<'_> {
    /// The impl block as written; or the trait with its `async fn`s made
    /// `fn -> impl Future + Send`, so that the server can run them on any thread.
    pub(super) fn user_item(&self) -> TokenStream {
        match self.endpoint.kind {
            crate::model::Kind::Impl(item) => stripped(&Input::Impl(item.clone())),
            crate::model::Kind::Trait(item) => self.rewritten_trait(item),
        }
    }

    fn rewritten_trait(&self, item: &ItemTrait) -> TokenStream {
        let root = self.root;
        let mut item = item.clone();
        let send: TypeParamBound = parse_quote!(#root::__private::Send);
        let sync: TypeParamBound = parse_quote!(#root::__private::Sync);
        item.supertraits.push(send);
        item.supertraits.push(sync);
        if item.colon_token.is_none() {
            item.colon_token = Some(Default::default());
        }
        for member in &mut item.items {
            if let TraitItem::Fn(method) = member {
                strip_signature(&mut method.attrs, &mut method.sig);
                self.desugar_async(method);
            }
        }
        item.into_token_stream()
    }

    fn desugar_async(&self, method: &mut TraitItemFn) {
        desugar_async(self.root, method);
    }
}

/// A trait's `async fn` made `fn -> impl Future + Send`, so that its
/// futures can run on any thread (a default body is wrapped in `async move`).
pub(crate) fn desugar_async(root: &TokenStream, method: &mut TraitItemFn) {
    if method.sig.asyncness.take().is_none() {
        return;
    }
    let output = match &method.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    method.sig.output = parse_quote! {
        -> impl #root::__private::Future<Output = #output> + #root::__private::Send
    };
    if let Some(body) = &mut method.default {
        *body = parse_quote!({ async move #body });
    }
}
