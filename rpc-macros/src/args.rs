//! Parsing of `#[endpoint(...)]` and `#[rpc(...)]` arguments.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Attribute, LitStr};

use crate::ctxt::{Attr, Ctxt};

/// The arguments of `#[endpoint(namespace = "..", version = "..", since = "..", crate = "..")]`.
#[derive(Default)]
pub(crate) struct EndpointArgs {
    pub(crate) namespace: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    /// The version methods without their own `since` were added at.
    pub(crate) since: Option<LitStr>,
    pub(crate) krate: Option<LitStr>,
}

/// The arguments of `#[rpc(since = "..", uninterruptible, idempotent)]` on
/// a method or an argument (`uninterruptible`, `idempotent`: methods only).
#[derive(Default)]
pub(crate) struct MethodArgs {
    pub(crate) since: Option<LitStr>,
    /// `uninterruptible`, where it was written.
    pub(crate) uninterruptible: Option<syn::Path>,
    /// `idempotent`, where it was written.
    pub(crate) idempotent: Option<syn::Path>,
}

/// The name of the per-method attribute.
pub(crate) const RPC_ATTR: &str = "rpc";

pub(crate) fn parse_endpoint_args(cx: &Ctxt, tokens: TokenStream) -> EndpointArgs {
    let mut namespace = Attr::none(cx, "namespace");
    let mut version = Attr::none(cx, "version");
    let mut since = Attr::none(cx, "since");
    let mut krate = Attr::none(cx, "crate");
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("namespace") {
            namespace.set(&meta.path, string_value(&meta)?);
        } else if meta.path.is_ident("version") {
            version.set(&meta.path, string_value(&meta)?);
        } else if meta.path.is_ident("since") {
            since.set(&meta.path, string_value(&meta)?);
        } else if meta.path.is_ident("crate") {
            krate.set(&meta.path, string_value(&meta)?);
        } else {
            unknown(cx, &meta, "argument", "`namespace`, `version`, `since` or `crate`")?;
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(tokens) {
        cx.syn_error(error);
    }
    EndpointArgs {
        namespace: namespace.get(),
        version: version.get(),
        since: since.get(),
        krate: krate.get(),
    }
}

/// Parses every `#[rpc(...)]` attribute of a method or an argument.
pub(crate) fn parse_method_args(cx: &Ctxt, attrs: &[Attribute]) -> MethodArgs {
    let mut since = Attr::none(cx, "since");
    let mut uninterruptible = Attr::none(cx, "uninterruptible");
    let mut idempotent = Attr::none(cx, "idempotent");
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(RPC_ATTR)) {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            cx.error_spanned_by(
                attr,
                "expected `#[rpc(since = \"MAJOR.MINOR\")]`, `#[rpc(uninterruptible)]` or `#[rpc(idempotent)]`",
            );
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("since") {
                since.set(&meta.path, string_value(&meta)?);
            } else if meta.path.is_ident("uninterruptible") {
                flag(cx, &meta, "uninterruptible")?;
                uninterruptible.set(&meta.path, meta.path.clone());
            } else if meta.path.is_ident("idempotent") {
                flag(cx, &meta, "idempotent")?;
                idempotent.set(&meta.path, meta.path.clone());
            } else {
                unknown(
                    cx,
                    &meta,
                    "`rpc` argument",
                    "`since`, `uninterruptible` or `idempotent`",
                )?;
            }
            Ok(())
        });
        if let Err(error) = parsed {
            cx.syn_error(error);
        }
    }
    MethodArgs {
        since: since.get(),
        uninterruptible: uninterruptible.get(),
        idempotent: idempotent.get(),
    }
}

/// A key that takes no value: a value is reported, and skipped.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<()> {
    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        cx.error_spanned_by(&meta.path, format_args!("`{name}` takes no value: `#[rpc({name})]`"));
        unknown_value(meta)?;
    }
    Ok(())
}

fn string_value(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// Records an unknown key and skips its value, so the other keys are still checked.
fn unknown(cx: &Ctxt, meta: &ParseNestedMeta<'_>, what: &str, expected: &str) -> syn::Result<()> {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    cx.error_spanned_by(&meta.path, format_args!("unknown {what} `{name}`; expected {expected}"));
    unknown_value(meta)
}

/// Skips the value of a key already reported.
fn unknown_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn errors(cx: Ctxt) -> Vec<String> {
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn endpoint_args() {
        let cx = Ctxt::new();
        let args = parse_endpoint_args(&cx, quote!(namespace = "control", version = "2.0", crate = "x"));
        assert_eq!(args.namespace.unwrap().value(), "control");
        assert_eq!(args.version.unwrap().value(), "2.0");
        assert_eq!(args.krate.unwrap().value(), "x");
        assert!(errors(cx).is_empty());
    }

    #[test]
    fn every_bad_argument_is_reported() {
        let cx = Ctxt::new();
        let args = parse_endpoint_args(&cx, quote!(version = "1.0", colour = "red", version = "2.0", size(3)));
        assert_eq!(args.version.unwrap().value(), "1.0");
        assert_eq!(
            errors(cx),
            [
                "unknown argument `colour`; expected `namespace`, `version`, `since` or `crate`",
                "duplicate `version` argument",
                "unknown argument `size`; expected `namespace`, `version`, `since` or `crate`",
            ]
        );
    }
}
