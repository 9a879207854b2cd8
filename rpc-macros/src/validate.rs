//! Semantic checks. Each check states its rule, records its errors at the
//! offending tokens, and never stops the others.

use syn::visit::{self, Visit};
use syn::{Generics, Type, TypeImplTrait, TypePath, TypeReference};

use crate::ctxt::Ctxt;
use crate::model::{Endpoint, Kind, Method, Output, VersionArg};
use crate::names::{self, RESERVED_METHODS};

pub(crate) fn validate(cx: &Ctxt, endpoint: &Endpoint<'_>) {
    check_item_shape(cx, endpoint);
    check_namespace(cx, endpoint);
    if let Some(version) = &endpoint.version {
        check_version_format(cx, version);
    }
    check_endpoint_since(cx, endpoint);
    check_unique_names(cx, endpoint);
    for method in &endpoint.methods {
        check_async(cx, method);
        check_plain_fn(cx, method);
        check_receiver(cx, method);
        check_context(cx, method);
        check_arg_patterns(cx, method);
        check_no_generics(cx, method);
        check_signature_types(cx, method);
        check_reserved_names(cx, endpoint, method);
        check_private_name(cx, method);
        check_since(cx, endpoint, method);
        check_argument_since(cx, endpoint, method);
    }
}

/// `#[endpoint]` takes an inherent impl of a named, non-generic type, or a
/// plain trait: generated names come from that name, and the dispatch table
/// cannot be generic.
fn check_item_shape(cx: &Ctxt, endpoint: &Endpoint<'_>) {
    match endpoint.kind {
        Kind::Impl(item) => {
            if let Some((_, path, _)) = &item.trait_ {
                cx.error_spanned_by(
                    path,
                    "`#[endpoint]` goes on an inherent `impl` block, not on a trait implementation; put it on the trait definition instead",
                );
            }
            refuse_generics(
                cx,
                &item.generics,
                "`#[endpoint]` does not support generic `impl` blocks",
                "`#[endpoint]` does not support a `where` clause on the `impl` block",
            );
            if let Some(unsafety) = &item.unsafety {
                cx.error_spanned_by(unsafety, "`#[endpoint]` does not support `unsafe impl`");
            }
            if endpoint.name.is_none() {
                cx.error_spanned_by(
                    &item.self_ty,
                    "`#[endpoint]` needs a named self type, such as `impl MyEndpoint`",
                );
            }
        }
        Kind::Trait(item) => {
            refuse_generics(
                cx,
                &item.generics,
                "`#[endpoint]` does not support generic traits",
                "`#[endpoint]` does not support a `where` clause on the trait",
            );
            if let Some(unsafety) = &item.unsafety {
                cx.error_spanned_by(unsafety, "`#[endpoint]` does not support `unsafe trait`");
            }
            if let Some(auto) = &item.auto_token {
                cx.error_spanned_by(auto, "`#[endpoint]` does not support auto traits");
            }
        }
    }
}

/// A namespace is a non-empty name; the default namespace is written by omitting it.
fn check_namespace(cx: &Ctxt, endpoint: &Endpoint<'_>) {
    if let Some(namespace) = &endpoint.namespace {
        if namespace.value().is_empty() {
            cx.error_spanned_by(
                namespace,
                "the namespace cannot be empty; omit `namespace` for the default namespace",
            );
        }
    }
}

/// Versions are `MAJOR.MINOR` or `MAJOR.MINOR.REVISION`, in decimal.
fn check_version_format(cx: &Ctxt, version: &VersionArg) {
    if version.parsed.is_none() {
        cx.error_spanned_by(
            &version.lit,
            format_args!(
                "invalid version `{}`: expected `MAJOR.MINOR` or `MAJOR.MINOR.REVISION`, such as `\"2.1\"`",
                version.lit.value()
            ),
        );
    }
}

/// Remote methods are `async`: they run on the server's executor.
fn check_async(cx: &Ctxt, method: &Method<'_>) {
    if method.sig.asyncness.is_none() {
        cx.error_spanned_by(
            method.sig.fn_token,
            "`#[endpoint]` methods must be `async`: make it `async fn`, or move helpers to a separate `impl` block",
        );
    }
}

/// Remote methods are plain Rust functions: not `const`, `unsafe`, `extern` or variadic.
fn check_plain_fn(cx: &Ctxt, method: &Method<'_>) {
    let sig = method.sig;
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "`#[endpoint]` methods cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "`#[endpoint]` methods cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "`#[endpoint]` methods cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "`#[endpoint]` methods cannot be variadic");
    }
}

/// Remote methods take `&self`: the server shares its endpoints between
/// concurrent requests.
fn check_receiver(cx: &Ctxt, method: &Method<'_>) {
    match method.receiver {
        None => cx.error_spanned_by(
            &method.sig.ident,
            "`#[endpoint]` methods take `&self`; move constructors and helpers to a separate `impl` block",
        ),
        Some(receiver)
            if receiver.reference.is_none() || receiver.mutability.is_some() || receiver.colon_token.is_some() =>
        {
            cx.error_spanned_by(
                receiver,
                "`#[endpoint]` methods take `&self`, shared between concurrent requests",
            );
        }
        Some(syn::Receiver {
            reference: Some((_, Some(lifetime))),
            ..
        }) => cx.error_spanned_by(
            lifetime,
            "`#[endpoint]` methods take `&self` without a lifetime: the server lends it for one request",
        ),
        Some(_) => {}
    }
}

/// The request context comes first after `&self`, by reference, exactly once.
fn check_context(cx: &Ctxt, method: &Method<'_>) {
    match method.params.first() {
        Some(first) if first.is_context => match &*first.original.ty {
            Type::Reference(reference) => {
                if let Some(lifetime) = &reference.lifetime {
                    cx.error_spanned_by(
                        lifetime,
                        "take the context as `ctx: &Context`, without a lifetime: the server lends it for one request",
                    );
                }
                if let Some(mutability) = &reference.mutability {
                    cx.error_spanned_by(
                        mutability,
                        "the context is shared, not mutable: take it as `ctx: &Context`",
                    );
                }
            }
            other => cx.error_spanned_by(other, "take the context by reference: `ctx: &Context`"),
        },
        _ => {
            if method.params.iter().all(|param| !param.is_context) {
                cx.error_spanned_by(
                    &method.sig.ident,
                    "missing context: the first argument after `&self` must be `ctx: &Context`",
                );
            }
        }
    }
    for (position, param) in method.params.iter().enumerate() {
        if param.is_context && position > 0 {
            cx.error_spanned_by(
                param.original,
                "the context must be the first argument after `&self`, and appear once",
            );
        }
    }
}

/// Arguments travel by name, so each is bound to a plain name, not a pattern.
fn check_arg_patterns(cx: &Ctxt, method: &Method<'_>) {
    for param in method.wire_params() {
        if param.ident.is_none() {
            cx.error_spanned_by(
                &param.original.pat,
                "arguments must be plain names, not patterns: they travel by name on the wire",
            );
        }
    }
    // The arguments struct, the stub and the dispatch take every argument:
    // one switched off would be missing from the method only.
    for param in &method.params {
        let gated = param.original.attrs.iter().find(|attr| attr.path().is_ident("cfg"));
        if let Some(attr) = gated {
            cx.error_spanned_by(
                attr,
                "`#[endpoint]` does not support `#[cfg]` on an argument: put the method under `#[cfg]`, once per variant",
            );
        }
    }
}

/// The dispatch table is one concrete function per method: no generics, no
/// `impl Trait` arguments or results.
fn check_no_generics(cx: &Ctxt, method: &Method<'_>) {
    refuse_generics(
        cx,
        &method.sig.generics,
        "`#[endpoint]` methods cannot be generic",
        "`#[endpoint]` methods cannot have a `where` clause",
    );
}

/// Reports generic parameters with `generic`, or a `where` clause without
/// any with `where_clause`, spanned at what was written (`Generics` prints
/// no `where` clause: an error spanned by it pointed at the attribute).
fn refuse_generics(cx: &Ctxt, generics: &Generics, generic: &str, where_clause: &str) {
    if !generics.params.is_empty() {
        cx.error_spanned_by(generics, generic);
    } else if let Some(clause) = &generics.where_clause {
        cx.error_spanned_by(clause, where_clause);
    }
}

/// Arguments and results cross the wire: owned types, without `Self`,
/// lifetimes or `impl Trait`.
fn check_signature_types(cx: &Ctxt, method: &Method<'_>) {
    for param in method.wire_params() {
        TypeCheck { cx, what: "arguments" }.visit_type(&param.original.ty);
    }
    if let Output::Type(ty) = method.output {
        TypeCheck { cx, what: "results" }.visit_type(ty);
    }
}

struct TypeCheck<'c> {
    cx: &'c Ctxt,
    what: &'static str,
}

impl<'ast> Visit<'ast> for TypeCheck<'_> {
    fn visit_type_reference(&mut self, reference: &'ast TypeReference) {
        self.cx.error_spanned_by(
            reference,
            format_args!(
                "{} must be owned types, decoded from the wire: use `String` for `&str`, `Vec<T>` for `&[T]`",
                self.what
            ),
        );
    }

    fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
        self.cx.error_spanned_by(
            lifetime,
            format_args!("{} must be owned types, without lifetimes", self.what),
        );
    }

    fn visit_type_impl_trait(&mut self, impl_trait: &'ast TypeImplTrait) {
        self.cx.error_spanned_by(
            impl_trait,
            format_args!("{} cannot be `impl Trait`: name a concrete type", self.what),
        );
    }

    fn visit_type_path(&mut self, path: &'ast TypePath) {
        if path.qself.is_none()
            && path
                .path
                .segments
                .first()
                .is_some_and(|segment| segment.ident == "Self")
        {
            self.cx.error_spanned_by(
                path,
                format_args!(
                    "{} cannot mention `Self`: the client stub is another type; name the type",
                    self.what
                ),
            );
            return;
        }
        visit::visit_type_path(self, path);
    }
}

/// The client stub has methods `new`, `client`, `cast`, `prepare` and
/// `can_send_version`: a remote method cannot take one of those names.
fn check_reserved_names(cx: &Ctxt, endpoint: &Endpoint<'_>, method: &Method<'_>) {
    if RESERVED_METHODS.contains(&method.wire_name.as_str()) {
        let client = endpoint.name.as_ref().map_or_else(
            || "the generated client".to_owned(),
            |name| names::client(name).to_string(),
        );
        cx.error_spanned_by(
            &method.sig.ident,
            format_args!(
                "method name `{}` conflicts with generated `{client}::{}`",
                method.wire_name, method.wire_name
            ),
        );
    }
}

/// Each method is one name on the wire: rustc would report a second method
/// at the user's name, but also the generated items' clashes, at the
/// attribute.
fn check_unique_names(cx: &Ctxt, endpoint: &Endpoint<'_>) {
    // Methods under `#[cfg]` may share a name, one per configuration.
    let gated = |method: &Method<'_>| method.cfg_attrs().next().is_some();
    for (index, method) in endpoint.methods.iter().enumerate() {
        let earlier = endpoint.methods[..index]
            .iter()
            .any(|other| other.wire_name == method.wire_name && !(gated(other) && gated(method)));
        if earlier {
            cx.error_spanned_by(
                &method.sig.ident,
                format_args!(
                    "a second method named `{}`: each method is one name on the wire",
                    method.wire_name
                ),
            );
        }
    }
}

/// Names starting with `_` are never dispatched (oslo.messaging's default
/// access policy hides them), so they cannot be remote methods.
fn check_private_name(cx: &Ctxt, method: &Method<'_>) {
    if method.wire_name.starts_with('_') {
        cx.error_spanned_by(
            &method.sig.ident,
            "remote method names cannot start with `_`: servers never dispatch such names",
        );
    }
}

/// `#[endpoint(since = "X.Y")]`, the version methods were added at by
/// default, is a well-formed version that the endpoint's own version supports.
fn check_endpoint_since(cx: &Ctxt, endpoint: &Endpoint<'_>) {
    if let Some(since) = &endpoint.since {
        check_since_fits(cx, endpoint, since);
    }
}

/// `#[rpc(since = "X.Y")]` on a method names a well-formed version of the
/// endpoint's API that the endpoint's own version supports.
fn check_since(cx: &Ctxt, endpoint: &Endpoint<'_>, method: &Method<'_>) {
    if let Some(since) = &method.since {
        check_since_fits(cx, endpoint, since);
    }
}

/// `#[rpc(since = "X.Y")]` on an argument marks an optional argument added
/// after its method: a version the endpoint supports, later than the
/// method's own. (That the argument is an `Option` is checked by the
/// compiler, through `rpc_core::remote::OptionalArgument`.)
fn check_argument_since(cx: &Ctxt, endpoint: &Endpoint<'_>, method: &Method<'_>) {
    for param in &method.params {
        let Some(since) = &param.since else {
            continue;
        };
        if param.is_context {
            cx.error_spanned_by(&since.lit, "the context always travels: it cannot have a `since`");
            continue;
        }
        if !check_since_fits(cx, endpoint, since) {
            continue;
        }
        if let (Some(argument), Some(method_since)) = (&since.parsed, method.added_at(endpoint)) {
            if !argument.is_after(&method_since) {
                cx.error_spanned_by(
                    &since.lit,
                    format_args!(
                        "an argument's `since` must be later than its method's ({}.{}): this argument is there from the start; remove `since`",
                        method_since.major, method_since.minor
                    ),
                );
            }
        }
    }
}

/// Checks a `since`; returns whether it is usable.
fn check_since_fits(cx: &Ctxt, endpoint: &Endpoint<'_>, since: &VersionArg) -> bool {
    check_version_format(cx, since);
    let Some(endpoint_version) = &endpoint.version else {
        cx.error_spanned_by(
            &since.lit,
            "`since` needs the endpoint's version: `#[endpoint(version = \"X.Y\")]`",
        );
        return false;
    };
    let (Some(implemented), Some(needed)) = (&endpoint_version.parsed, &since.parsed) else {
        return false;
    };
    if !implemented.supports(needed) {
        cx.error_spanned_by(
            &since.lit,
            format_args!(
                "`since = \"{}\"` is not compatible with the endpoint's version {}: same major, and not above it",
                since.lit.value(),
                endpoint_version.lit.value()
            ),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::{args, input, model};

    fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let input = input::parse(item).unwrap();
        let endpoint_args = args::parse_endpoint_args(&cx, attr);
        let endpoint = model::lower(&cx, &input, endpoint_args);
        validate(&cx, &endpoint);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_good_endpoint_passes() {
        let found = errors(
            quote!(namespace = "control", version = "2.1"),
            quote! {
                impl Control {
                    async fn stop(&self, _ctx: &Context) {}
                    #[rpc(since = "2.1")]
                    async fn resize(&self, ctx: &rpc_core::Context, mut size: u32, label: Option<String>) -> Result<u32, Oops> { Ok(size) }
                }
            },
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let found = errors(
            quote!(version = "2"),
            quote! {
                impl Control {
                    fn sync_one(&self, ctx: &Context) {}
                    async fn by_value(self, ctx: &Context) {}
                    async fn no_ctx(&self, size: u32) {}
                    async fn late_ctx(&self, size: u32, ctx: &Context) {}
                    async fn pattern(&self, ctx: &Context, (a, b): (u32, u32)) {}
                    async fn generic<T>(&self, ctx: &Context, t: u32) {}
                    async fn borrowed(&self, ctx: &Context, name: &str) -> Vec<&'static str> { Vec::new() }
                    async fn new(&self, ctx: &Context) {}
                    async fn _hidden(&self, ctx: &Context) {}
                }
            },
        );
        let expected = [
            "invalid version `2`",
            "must be `async`",
            "take `&self`",
            "missing context",
            "the context must be the first argument",
            "plain names, not patterns",
            "cannot be generic",
            "arguments must be owned types",
            "results must be owned types",
            "conflicts with generated `ControlClient::new`",
            "cannot start with `_`",
        ];
        for needle in expected {
            assert!(
                found.iter().any(|error| error.contains(needle)),
                "no error containing {needle:?} in {found:#?}"
            );
        }
    }

    #[test]
    fn since_must_fit_the_endpoint_version() {
        let item = quote! {
            impl Api {
                #[rpc(since = "3.0")]
                async fn a(&self, ctx: &Context) {}
                #[rpc(since = "2.5")]
                async fn b(&self, ctx: &Context) {}
            }
        };
        let found = errors(quote!(version = "2.4"), item.clone());
        assert_eq!(found.len(), 2, "{found:?}");
        let found = errors(quote!(), item);
        assert!(
            found.iter().all(|e| e.contains("needs the endpoint's version")),
            "{found:?}"
        );
    }

    #[test]
    fn trait_impls_are_refused() {
        let found = errors(
            quote!(),
            quote!(impl Api for Thing { async fn a(&self, ctx: &Context) {} }),
        );
        assert!(found[0].contains("not on a trait implementation"), "{found:?}");
    }
}
