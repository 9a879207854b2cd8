//! The model of `#[notifications]`: handlers with their priorities, event
//! type pattern and payload type, checked as they are lowered.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ImplItem, LitStr, Signature, TraitItem, Type, Visibility};

use super::ON_ATTR;
use crate::ctxt::{Attr, Ctxt};
use crate::input::Input;

/// oslo.messaging's priorities, in its order.
pub(crate) const PRIORITIES: [&str; 7] = ["audit", "debug", "info", "warn", "error", "critical", "sample"];

/// The annotated item, lowered.
pub(crate) struct Listener<'a> {
    pub(crate) input: &'a Input,
    /// The trait's name, or the last segment of the impl's self type.
    pub(crate) name: Option<Ident>,
    pub(crate) vis: Visibility,
    pub(crate) root: TokenStream,
    pub(crate) handlers: Vec<Handler<'a>>,
}

/// One handler method.
pub(crate) struct Handler<'a> {
    pub(crate) sig: &'a Signature,
    pub(crate) attrs: &'a [Attribute],
    /// Lower-case priority names, in oslo's order.
    pub(crate) priorities: Vec<&'static str>,
    /// The event-type pattern (`*` matches any run), if any.
    pub(crate) event_type: Option<LitStr>,
    /// The payload's type.
    pub(crate) payload: Option<&'a Type>,
}

impl Handler<'_> {
    /// The `#[cfg]` attributes, copied onto generated code for the method.
    pub(crate) fn cfg_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("cfg"))
    }

    /// The doc comments, copied onto the typed notifier's methods.
    pub(crate) fn doc_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("doc"))
    }

    /// The one priority and exact event type a typed notifier method sends,
    /// when the handler has them.
    pub(crate) fn sends(&self) -> Option<(&'static str, &LitStr)> {
        let event_type = self.event_type.as_ref()?;
        match self.priorities.as_slice() {
            [priority] if !event_type.value().contains('*') => Some((priority, event_type)),
            _ => None,
        }
    }
}

fn root(cx: &Ctxt, attr: TokenStream) -> TokenStream {
    let mut krate: Attr<'_, LitStr> = Attr::none(cx, "crate");
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate.set(&meta.path, meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown argument; `#[notifications]` takes only `crate = \"path\"`"))
        }
    });
    if let Err(error) = parser.parse2(attr) {
        cx.syn_error(error);
    }
    match krate.get() {
        None => quote!(::rpc_core),
        Some(lit) => match lit.parse::<syn::Path>() {
            Ok(path) => quote!(#path),
            Err(_) => {
                cx.error_spanned_by(&lit, "`crate` must be a path, such as `\"::rpc_core\"`");
                quote!(::rpc_core)
            }
        },
    }
}

pub(crate) fn lower<'a>(cx: &Ctxt, input: &'a Input, attr: TokenStream) -> Listener<'a> {
    let root = root(cx, attr);
    let (name, vis, methods): (_, _, Vec<(&Signature, &[Attribute])>) = match input {
        Input::Impl(item) => {
            if let Some((_, path, _)) = &item.trait_ {
                cx.error_spanned_by(
                    path,
                    "`#[notifications]` goes on an inherent `impl` block, not a trait implementation",
                );
            }
            if !item.generics.params.is_empty() {
                cx.error_spanned_by(&item.generics, "`#[notifications]` does not support generic types");
            }
            let name = crate::model::self_type_name(&item.self_ty);
            if name.is_none() {
                cx.error_spanned_by(&item.self_ty, "`#[notifications]` needs a named type");
            }
            let methods = item
                .items
                .iter()
                .filter_map(|member| match member {
                    ImplItem::Fn(method) => Some((&method.sig, method.attrs.as_slice())),
                    _ => None,
                })
                .collect();
            (name, Visibility::Public(syn::Token![pub](Span::call_site())), methods)
        }
        Input::Trait(item) => {
            if !item.generics.params.is_empty() {
                cx.error_spanned_by(&item.generics, "`#[notifications]` does not support generic traits");
            }
            let methods = item
                .items
                .iter()
                .filter_map(|member| match member {
                    TraitItem::Fn(method) => Some((&method.sig, method.attrs.as_slice())),
                    _ => None,
                })
                .collect();
            (Some(item.ident.clone()), item.vis.clone(), methods)
        }
    };
    let handlers: Vec<Handler<'_>> = methods
        .into_iter()
        .map(|(sig, attrs)| lower_handler(cx, sig, attrs))
        .collect();
    if let Input::Trait(item) = input {
        // `<Trait>Notifier` has a method per handler that sends one
        // priority and event type, beside its own.
        for handler in handlers.iter().filter(|handler| handler.sends().is_some()) {
            let name = handler.sig.ident.unraw().to_string();
            if NOTIFIER_METHODS.contains(&name.as_str()) {
                cx.error_spanned_by(
                    &handler.sig.ident,
                    format_args!(
                        "`{name}` is a method of the generated `{}Notifier`: name the handler otherwise, with `#[on(...)]` for its priority",
                        item.ident
                    ),
                );
            }
        }
    }
    let trait_impl = matches!(input, Input::Impl(item) if item.trait_.is_some());
    if handlers.is_empty() && !trait_impl {
        let span = match input {
            Input::Impl(item) => item.self_ty.span(),
            Input::Trait(item) => item.ident.span(),
        };
        cx.syn_error(syn::Error::new(
            span,
            "`#[notifications]` needs at least one handler method",
        ));
    }
    Listener {
        input,
        name,
        vis,
        root,
        handlers,
    }
}

/// The methods `<Trait>Notifier` has of its own.
const NOTIFIER_METHODS: [&str; 2] = ["new", "notifier"];

/// Parses `#[on(info, warn, event_type = "compute.instance.*")]`.
fn parse_on(cx: &Ctxt, attrs: &[Attribute]) -> (Option<Vec<&'static str>>, Option<LitStr>) {
    let mut priorities: Option<Vec<&'static str>> = None;
    let mut event_type: Attr<'_, LitStr> = Attr::none(cx, "event_type");
    let mut seen = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(ON_ATTR)) {
        if seen {
            cx.error_spanned_by(attr, "duplicate `#[on]`: name every priority in one `#[on(...)]`");
            continue;
        }
        seen = true;
        if !matches!(attr.meta, syn::Meta::List(_)) {
            cx.error_spanned_by(attr, "expected `#[on(PRIORITY, ..., event_type = \"PATTERN\")]`");
            continue;
        }
        let found = priorities.get_or_insert_with(Vec::new);
        let mut unknown = false;
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("event_type") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if value.is_empty() || value.chars().any(char::is_whitespace) {
                    cx.error_spanned_by(
                        &lit,
                        "an event type pattern is a non-empty name without spaces, `*` matching any run of characters",
                    );
                }
                event_type.set(&meta.path, lit);
                return Ok(());
            }
            let name = meta.path.get_ident().map(Ident::to_string).unwrap_or_default();
            match PRIORITIES.iter().find(|priority| **priority == name) {
                Some(priority) if found.contains(priority) => {
                    cx.error_spanned_by(&meta.path, format_args!("duplicate priority `{name}`"));
                }
                Some(priority) => found.push(priority),
                None => {
                    unknown = true;
                    cx.error_spanned_by(
                        &meta.path,
                        format_args!(
                            "unknown priority `{}`; expected {}, or `event_type = \"PATTERN\"`",
                            meta.path.to_token_stream().to_string().replace(' ', ""),
                            PRIORITIES.join(", ")
                        ),
                    );
                }
            }
            Ok(())
        });
        if let Err(error) = parsed {
            cx.syn_error(error);
        }
        if found.is_empty() && !unknown {
            cx.error_spanned_by(attr, "`#[on]` names at least one priority, such as `#[on(info)]`");
        }
    }
    (priorities, event_type.get())
}

fn lower_handler<'a>(cx: &Ctxt, sig: &'a Signature, attrs: &'a [Attribute]) -> Handler<'a> {
    let (on, event_type) = parse_on(cx, attrs);
    let name = sig.ident.unraw().to_string();
    let mut priorities = match on {
        Some(priorities) => priorities,
        None => match PRIORITIES.iter().find(|priority| **priority == name) {
            Some(priority) => vec![*priority],
            None => {
                cx.error_spanned_by(
                    &sig.ident,
                    format_args!(
                        "`{name}` handles no priority: name it after one ({}) or add `#[on(info)]`",
                        PRIORITIES.join(", ")
                    ),
                );
                Vec::new()
            }
        },
    };
    priorities.sort_by_key(|priority| PRIORITIES.iter().position(|known| known == priority));
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "a notification handler must be `async`");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, "a notification handler cannot be generic");
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(other) => cx.error_spanned_by(other, "a notification handler takes `&self` first"),
        None => cx.error_spanned_by(
            &sig.ident,
            "a notification handler takes `&self`, the notification and the payload",
        ),
    }
    let typed: Vec<&syn::PatType> = inputs
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let expected = "a notification handler takes `(&self, notification: &Notification, payload: T)`";
    let payload = match typed.as_slice() {
        [notification, payload] => {
            if !is_notification_ref(&notification.ty) {
                cx.error_spanned_by(
                    &notification.ty,
                    "the argument after `&self` is the notification: `&Notification`",
                );
            }
            if matches!(&*payload.ty, Type::Reference(_)) {
                cx.error_spanned_by(
                    &payload.ty,
                    "the payload is taken by value (a type that implements `DeserializeOwned`)",
                );
            }
            Some(&*payload.ty)
        }
        // No argument at all: already reported, at the name.
        _ if sig.inputs.is_empty() => None,
        _ => {
            cx.error_spanned_by(&sig.inputs, expected);
            None
        }
    };
    Handler {
        sig,
        attrs,
        priorities,
        event_type,
        payload,
    }
}

/// `&Notification`, `&rpc_core::notify::Notification`... (not `&mut`: the
/// listener shares it between its endpoints)
fn is_notification_ref(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    matches!(&*reference.elem, Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|segment| segment.ident == "Notification"))
}
