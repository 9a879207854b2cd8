//! The model: what an endpoint is, lowered from either form of input.
//!
//! Lowering never fails: anything odd is kept as found, for `validate` to
//! report with the original tokens' spans.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, Ident, ImplItem, ItemImpl, ItemTrait, LitStr, Pat, PatType, Receiver, ReturnType, Signature,
    TraitItem, Type, Visibility,
};

use crate::args::{self, EndpointArgs};
use crate::ctxt::Ctxt;
use crate::input::Input;

/// An endpoint: its form, its API identity, and its methods.
pub(crate) struct Endpoint<'a> {
    pub(crate) kind: Kind<'a>,
    /// What generated names are derived from: the trait's name, or the last
    /// segment of the impl's self type (`None` when there is no such name).
    pub(crate) name: Option<Ident>,
    /// The visibility of generated items.
    pub(crate) vis: Visibility,
    pub(crate) namespace: Option<LitStr>,
    pub(crate) version: Option<VersionArg>,
    /// The version methods without their own `since` were added at
    /// (default: the endpoint version's `MAJOR.0`).
    pub(crate) since: Option<VersionArg>,
    /// The path generated code reaches the runtime through.
    pub(crate) root: TokenStream,
    pub(crate) methods: Vec<Method<'a>>,
}

/// The form of the input.
pub(crate) enum Kind<'a> {
    Impl(&'a ItemImpl),
    Trait(&'a ItemTrait),
}

/// A version written in an attribute, and its value when it parses.
pub(crate) struct VersionArg {
    pub(crate) lit: LitStr,
    pub(crate) parsed: Option<ApiVersion>,
}

impl VersionArg {
    fn new(lit: LitStr) -> VersionArg {
        let parsed = ApiVersion::parse(&lit.value());
        VersionArg { lit, parsed }
    }
}

/// `MAJOR.MINOR[.REVISION]`, with oslo.messaging's compatibility rule (the
/// same as `rpc_core::Version`, which this crate cannot depend on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ApiVersion {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) revision: Option<u32>,
}

impl ApiVersion {
    pub(crate) fn parse(text: &str) -> Option<ApiVersion> {
        let mut parts = text.split('.');
        let mut number = || {
            parts
                .next()
                .filter(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|part| part.parse::<u32>().ok())
        };
        let major = number()?;
        let minor = number()?;
        let rest: Vec<&str> = parts.collect();
        let revision = match rest.as_slice() {
            [] => None,
            [part] if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => Some(part.parse().ok()?),
            _ => return None,
        };
        Some(ApiVersion { major, minor, revision })
    }

    /// `MAJOR.0`.
    pub(crate) fn major_base(&self) -> ApiVersion {
        ApiVersion {
            major: self.major,
            minor: 0,
            revision: None,
        }
    }

    /// Whether `self` comes after `other`.
    pub(crate) fn is_after(&self, other: &ApiVersion) -> bool {
        (self.major, self.minor, self.revision.unwrap_or(0)) > (other.major, other.minor, other.revision.unwrap_or(0))
    }

    /// Whether an endpoint implementing `self` serves requests for `requested`.
    pub(crate) fn supports(&self, requested: &ApiVersion) -> bool {
        if self.major != requested.major || requested.minor > self.minor {
            return false;
        }
        !(requested.minor == self.minor && requested.revision.unwrap_or(0) > self.revision.unwrap_or(0))
    }
}

/// A remote method.
pub(crate) struct Method<'a> {
    pub(crate) sig: &'a Signature,
    pub(crate) attrs: &'a [Attribute],
    /// The method's name on the wire.
    pub(crate) wire_name: String,
    pub(crate) receiver: Option<&'a Receiver>,
    /// The typed parameters after the receiver, in order.
    pub(crate) params: Vec<Param<'a>>,
    pub(crate) output: Output<'a>,
    pub(crate) since: Option<VersionArg>,
    /// `#[rpc(uninterruptible)]`: the server never drops its handler.
    pub(crate) uninterruptible: bool,
    /// `#[rpc(idempotent)]`: running it twice does no more than once, so
    /// client layers may retry it.
    pub(crate) idempotent: bool,
}

/// A typed parameter.
pub(crate) struct Param<'a> {
    pub(crate) original: &'a PatType,
    /// The binding name, when the pattern is a plain identifier.
    pub(crate) ident: Option<&'a Ident>,
    /// Whether the type names the request context (`&Context`).
    pub(crate) is_context: bool,
    /// `#[rpc(since = "..")]`: an optional argument added in a later minor version.
    pub(crate) since: Option<VersionArg>,
}

impl Param<'_> {
    /// The argument's name on the wire: its binding's, without `r#`. A
    /// leading `_` is part of it, as serde names the field: `_flavor`
    /// travels as `_flavor`, and renaming an argument so is a change of the
    /// API (the compatibility check reports it).
    pub(crate) fn wire_name(&self) -> Option<String> {
        Some(self.ident?.unraw().to_string())
    }
}

/// What a method returns. Whether it is a `Result` (whatever alias names
/// it) is decided by the compiler, not here: see `rpc_core::remote::Returns`.
pub(crate) enum Output<'a> {
    Unit,
    Type(&'a Type),
}

impl Method<'_> {
    /// The arguments that travel on the wire (all but the context).
    pub(crate) fn wire_params(&self) -> impl Iterator<Item = &Param<'_>> {
        self.params.iter().filter(|param| !param.is_context)
    }

    /// The `#[cfg]` attributes, copied onto every generated item of the method.
    pub(crate) fn cfg_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("cfg"))
    }

    /// The doc comments, copied onto the client stub's methods.
    pub(crate) fn doc_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("doc"))
    }

    /// `#[deprecated]`, copied onto the client stub's methods: their
    /// callers are the ones to warn.
    pub(crate) fn deprecated_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("deprecated"))
    }

    /// The version the method was added at, as its requests carry it: its
    /// `since`, else the endpoint's `since`, else the endpoint's `MAJOR.0`;
    /// none for an unversioned endpoint.
    pub(crate) fn added_at(&self, endpoint: &Endpoint<'_>) -> Option<ApiVersion> {
        let version = endpoint.version.as_ref()?.parsed?;
        match (&self.since, &endpoint.since) {
            (Some(since), _) => since.parsed,
            (None, Some(since)) => since.parsed,
            (None, None) => Some(version.major_base()),
        }
    }

    /// The method's return type; `None` for `()`.
    pub(crate) fn return_type(&self) -> Option<&Type> {
        match self.output {
            Output::Unit => None,
            Output::Type(ty) => Some(ty),
        }
    }
}

pub(crate) fn lower<'a>(cx: &Ctxt, input: &'a Input, args: EndpointArgs) -> Endpoint<'a> {
    let root = match &args.krate {
        None => quote!(::rpc_core),
        Some(lit) => match lit.parse::<syn::Path>() {
            Ok(path) => quote!(#path),
            Err(_) => {
                cx.error_spanned_by(lit, "`crate` must be a path, such as `\"::rpc_core\"`");
                quote!(::rpc_core)
            }
        },
    };
    let (kind, name, vis, methods) = match input {
        Input::Impl(item) => {
            let methods = item
                .items
                .iter()
                .filter_map(|item| match item {
                    ImplItem::Fn(method) => Some(lower_method(cx, &method.sig, &method.attrs)),
                    _ => None,
                })
                .collect();
            let vis = Visibility::Public(syn::Token![pub](Span::call_site()));
            (Kind::Impl(item), self_type_name(&item.self_ty), vis, methods)
        }
        Input::Trait(item) => {
            let methods = item
                .items
                .iter()
                .filter_map(|item| match item {
                    TraitItem::Fn(method) => Some(lower_method(cx, &method.sig, &method.attrs)),
                    _ => None,
                })
                .collect();
            (Kind::Trait(item), Some(item.ident.clone()), item.vis.clone(), methods)
        }
    };
    Endpoint {
        kind,
        name,
        vis,
        namespace: args.namespace,
        version: args.version.map(VersionArg::new),
        since: args.since.map(VersionArg::new),
        root,
        methods,
    }
}

pub(crate) fn self_type_name(ty: &Type) -> Option<Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|segment| segment.ident.clone()),
        _ => None,
    }
}

fn lower_method<'a>(cx: &Ctxt, sig: &'a Signature, attrs: &'a [Attribute]) -> Method<'a> {
    let mut receiver = None;
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(found) => receiver = Some(found),
            FnArg::Typed(typed) => {
                let args = args::parse_method_args(cx, &typed.attrs);
                if let Some(path) = &args.uninterruptible {
                    cx.error_spanned_by(path, "`uninterruptible` applies to a method, not to an argument");
                }
                if let Some(path) = &args.idempotent {
                    cx.error_spanned_by(path, "`idempotent` applies to a method, not to an argument");
                }
                params.push(Param {
                    original: typed,
                    ident: match &*typed.pat {
                        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(&pat.ident),
                        _ => None,
                    },
                    is_context: is_context_type(&typed.ty),
                    since: args.since.map(VersionArg::new),
                })
            }
        }
    }
    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(tuple) if tuple.elems.is_empty() => Output::Unit,
            _ => Output::Type(ty),
        },
    };
    let args = args::parse_method_args(cx, attrs);
    Method {
        sig,
        attrs,
        wire_name: sig.ident.unraw().to_string(),
        receiver,
        params,
        output,
        since: args.since.map(VersionArg::new),
        uninterruptible: args.uninterruptible.is_some(),
        idempotent: args.idempotent.is_some(),
    }
}

/// `&Context`, `&rpc_core::Context`, or `Context` taken by value (reported later).
fn is_context_type(ty: &Type) -> bool {
    let ty = match ty {
        Type::Reference(reference) => &*reference.elem,
        other => other,
    };
    matches!(ty, Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|segment| segment.ident == "Context" && segment.arguments.is_none()))
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn versions() {
        let v = |text| ApiVersion::parse(text).unwrap();
        assert!(v("2.3").supports(&v("2.1")));
        assert!(!v("2.3").supports(&v("2.3.1")));
        assert!(v("2.3.1").supports(&v("2.3")));
        assert!(!v("2.0").supports(&v("1.0")));
        for bad in ["2", "2.", "x.1", "1.2.3.4", "1.2.", "-1.0"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn both_forms_lower_alike() {
        let cx = Ctxt::new();
        let impl_form = crate::input::parse(quote! {
            impl Calc {
                async fn add(&self, ctx: &Context, a: u32, b: u32) -> u32 { a + b }
                async fn r#type(&self, ctx: &Context) -> Result<u8, Oops> { Ok(1) }
            }
        })
        .unwrap();
        let trait_form = crate::input::parse(quote! {
            trait Calc {
                async fn add(&self, ctx: &rpc_core::Context, a: u32, b: u32) -> u32;
                async fn r#type(&self, ctx: &Context) -> Result<u8, Oops>;
            }
        })
        .unwrap();
        for input in [&impl_form, &trait_form] {
            let endpoint = lower(&cx, input, EndpointArgs::default());
            assert_eq!(endpoint.name.as_ref().unwrap(), "Calc");
            let names: Vec<&str> = endpoint.methods.iter().map(|m| m.wire_name.as_str()).collect();
            assert_eq!(names, ["add", "type"]);
            let add = &endpoint.methods[0];
            assert!(add.params[0].is_context);
            assert_eq!(add.wire_params().count(), 2);
            assert!(matches!(add.output, Output::Type(_)));
            assert!(matches!(endpoint.methods[1].output, Output::Type(_)));
        }
        cx.check().unwrap();
    }
}
