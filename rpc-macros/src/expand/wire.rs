//! What crosses the wire: argument structs, each method's API constant, and
//! the type assertions that report unusable types at their own span.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Generator;

use crate::model::{ApiVersion, Method};
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
pub(super) fn version_expr(rt: &syn::Ident, version: Option<ApiVersion>) -> TokenStream {
    match version {
        None => quote!(#rt::None),
        Some(version) => {
            let call = version_call(rt, version);
            quote!(#rt::Some(#call))
        }
    }
}

impl Generator<'_> {
    /// One struct per method with its arguments as named fields. Optional
    /// arguments added in a minor version are left out when `None`, so that
    /// servers of older versions, which refuse unknown arguments, still serve
    /// the call.
    pub(super) fn args_structs(&self) -> TokenStream {
        let rt = &self.rt;
        let serde_path = format!("{}::__private::serde", self.root).replace(' ', "");
        self.methods()
            .map(|method| {
                let cfgs = method.cfg_attrs();
                let name = names::args_struct(method);
                let bounds = method_bounds(self.root, method, false);
                let fields = method.wire_params().map(|param| {
                    let ident = param.ident;
                    let ty = &param.original.ty;
                    let skip = param.since.as_ref().map(|_| {
                        let absent = format!("{rt}::OptionalArgument::is_absent");
                        quote!(#[serde(default, skip_serializing_if = #absent)])
                    });
                    quote!(#skip #ident: #ty)
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

    /// One constant per method: its name, the endpoint's namespace, and the
    /// version the method was added at.
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
                let wire_name = &method.wire_name;
                let version = version_expr(rt, method.added_at(self.endpoint));
                let idempotent = method.idempotent.then(|| quote!(.idempotent()));
                quote! {
                    #(#cfgs)*
                    const #name: #rt::Api = #rt::Api::new(#wire_name, #namespace, #version) #idempotent;
                }
            })
            .collect()
    }

    /// The request's API for a call with these arguments: the method's
    /// constant, raised by each optional argument added later that is sent.
    pub(super) fn api_for_call(&self, method: &Method<'_>, args: &syn::Ident) -> TokenStream {
        let rt = &self.rt;
        let api = names::api_const(method);
        let raises = method.wire_params().filter_map(|param| {
            let since = param.since.as_ref()?.parsed?;
            let ident = param.ident?;
            let wire_name = param.wire_name()?;
            let since = version_call(rt, since);
            Some(quote!(.argument(#wire_name, #since, !#rt::OptionalArgument::is_absent(&#args.#ident))))
        });
        quote!(#api #(#raises)*)
    }

    /// `(&Returns::<R>::new()).tag()`: the tag of the method's return type.
    pub(super) fn return_tag(&self, method: &Method<'_>) -> TokenStream {
        let rt = &self.rt;
        let ret = return_type(method);
        quote!((&#rt::Returns::<#ret>::new()).tag())
    }
}

/// The method's return type, `()` when it has none.
pub(super) fn return_type(method: &Method<'_>) -> TokenStream {
    match method.return_type() {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    }
}

/// The bounds a method's types must meet, each spanned on the type as the
/// user wrote it: `where Arg: Argument, Out: Output`.
///
/// Every generated item that uses the types carries these predicates. An
/// unusable type then fails at its own predicate, with the runtime trait's
/// message; the items' bodies are checked as if the bound held, so serde's
/// derive raises nothing more, and rustc reports the identical errors once.
///
/// With `sent`, for the typed client's methods, arguments are
/// `SentArgument`s: `Sync` too, as the client encodes them by reference.
pub(super) fn method_bounds(root: &TokenStream, method: &Method<'_>, sent: bool) -> Vec<TokenStream> {
    let bound = |ty: &syn::Type, trait_name: &str| {
        // Every token of the predicate, the runtime path included, carries the
        // type's span, so that rustc points at the type.
        let span = ty.span();
        let root = respan(root.clone(), span);
        let trait_name = syn::Ident::new(trait_name, span);
        quote_spanned!(span=> #ty: #root::remote::#trait_name)
    };
    let mut bounds: Vec<TokenStream> = method
        .wire_params()
        .map(|param| bound(&param.original.ty, if sent { "SentArgument" } else { "Argument" }))
        .collect();
    // Taken for the context by its name: `rpc_core::Context` it must be.
    let context = method.params.iter().find(|param| param.is_context);
    if let Some(syn::Type::Reference(reference)) = context.map(|param| &*param.original.ty) {
        bounds.push(bound(&reference.elem, "RequestContext"));
    }
    bounds.extend(
        method
            .wire_params()
            .filter(|param| param.since.is_some())
            .map(|param| bound(&param.original.ty, "OptionalArgument")),
    );
    // A `Result<T, E>` is an `Output` when `T` and `E` are; that `E` also
    // implements `Display` is checked where the error is sent.
    if let Some(ty) = method.return_type() {
        bounds.push(bound(ty, "Output"));
    }
    bounds
}

/// `tokens`, every one of them spanned at `span`.
pub(crate) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}
