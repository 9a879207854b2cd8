//! What crosses the wire: argument structs, each method's API constant, and
//! the type assertions that report unusable types at their own span.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Generator;
use crate::model::{ApiVersion, Method, Output};
use crate::names;

/// `__rpc::version(M, m, r)`.
pub(super) fn version_call(rt: &syn::Ident, version: ApiVersion) -> TokenStream {
    let ApiVersion { major, minor, revision } = version;
    let revision = match revision {
        Some(revision) => quote!(#rt::Some(#revision)),
        None => quote!(#rt::None),
    };
    quote!(#rt::version(#major, #minor, #revision))
}

/// `Some(__rpc::version(M, m, r))`, or `None`.
fn version_expr(rt: &syn::Ident, version: Option<ApiVersion>) -> TokenStream {
    match version {
        None => quote!(#rt::None),
        Some(version) => {
            let call = version_call(rt, version);
            quote!(#rt::Some(#call))
        }
    }
}

impl Generator<'_> {
    /// One struct per method with its arguments as named fields.
    pub(super) fn args_structs(&self) -> TokenStream {
        let rt = &self.rt;
        let serde_path = format!("{}::__private::serde", self.root).replace(' ', "");
        self.methods()
            .map(|method| {
                let cfgs = method.cfg_attrs();
                let name = names::args_struct(method);
                let bounds = method_bounds(self.root, method);
                let fields = method.wire_params().map(|param| {
                    let ident = param.ident;
                    let ty = &param.original.ty;
                    quote!(#ident: #ty)
                });
                quote! {
                    #(#cfgs)*
                    #[derive(#rt::serde::Serialize, #rt::serde::Deserialize)]
                    #[serde(crate = #serde_path, deny_unknown_fields)]
                    struct #name where #(#bounds,)* { #(#fields,)* }
                }
            })
            .collect()
    }

    /// One constant per method: the endpoint's namespace, and the version the
    /// method needs (its `since`, else the endpoint's).
    pub(super) fn api_consts(&self) -> TokenStream {
        let rt = &self.rt;
        let namespace = match &self.endpoint.namespace {
            Some(namespace) => quote!(#rt::Some(#namespace)),
            None => quote!(#rt::None),
        };
        self.methods()
            .map(|method| {
                let cfgs = method.cfg_attrs();
                let name = names::api_const(method);
                let version = method
                    .since
                    .as_ref()
                    .or(self.endpoint.version.as_ref())
                    .and_then(|version| version.parsed);
                let version = version_expr(rt, version);
                quote! {
                    #(#cfgs)*
                    const #name: #rt::Api = #rt::Api { namespace: #namespace, version: #version };
                }
            })
            .collect()
    }
}

/// The bounds a method's types must meet, each spanned on the type as the
/// user wrote it: `where Arg: Argument, Out: Output`.
///
/// Every generated item that uses the types carries these predicates. An
/// unusable type then fails at its own predicate, with the runtime trait's
/// message; the items' bodies are checked as if the bound held, so serde's
/// derive raises nothing more, and rustc reports the identical errors once.
pub(super) fn method_bounds(root: &TokenStream, method: &Method<'_>) -> Vec<TokenStream> {
    let bound = |ty: &syn::Type, trait_name: &str| {
        // Every token of the predicate, the runtime path included, carries the
        // type's span, so that rustc points at the type.
        let span = ty.span();
        let root = respan(root.clone(), span);
        let trait_name = syn::Ident::new(trait_name, span);
        quote_spanned!(span=> #ty: #root::__private::#trait_name)
    };
    let mut bounds: Vec<TokenStream> = method
        .wire_params()
        .map(|param| bound(&param.original.ty, "Argument"))
        .collect();
    match method.output {
        Output::Unit => {}
        Output::Plain(ty) => bounds.push(bound(ty, "Output")),
        Output::Fallible(ty) => bounds.push(bound(ty, "Fallible")),
    }
    bounds
}

/// `tokens`, every one of them spanned at `span`.
pub(super) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}
