//! Code generation for `#[notifications]`.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemTrait, ReturnType, TraitItem, TypeParamBound, parse_quote};

use super::ON_ATTR;
use super::model::{Handler, Listener};
use crate::expand::dispatch::wrapper_struct;
use crate::expand::item::desugar_async;
use crate::expand::wire::respan;
use crate::input::Input;

fn strip(attrs: &mut Vec<Attribute>) {
    attrs.retain(|attr| !attr.path().is_ident(ON_ATTR));
}

/// The item as written, minus our `#[on]` attributes.
pub(super) fn stripped(input: &Input) -> TokenStream {
    match input {
        Input::Impl(item) => {
            let mut item = item.clone();
            for member in &mut item.items {
                if let syn::ImplItem::Fn(method) = member {
                    strip(&mut method.attrs);
                }
            }
            item.into_token_stream()
        }
        Input::Trait(item) => {
            let mut item = item.clone();
            for member in &mut item.items {
                if let TraitItem::Fn(method) = member {
                    strip(&mut method.attrs);
                }
            }
            item.into_token_stream()
        }
    }
}

/// The trait with its `async fn`s made `fn -> impl Future + Send` (so the
/// listener can run them on any thread), and `Send + Sync + 'static` supertraits.
fn rewritten_trait(root: &TokenStream, item: &ItemTrait) -> TokenStream {
    let mut item = item.clone();
    let bounds: [TypeParamBound; 3] = [
        parse_quote!(#root::__private::Send),
        parse_quote!(#root::__private::Sync),
        parse_quote!('static),
    ];
    item.supertraits.extend(bounds);
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }
    for member in &mut item.items {
        if let TraitItem::Fn(method) = member {
            strip(&mut method.attrs);
            desugar_async(root, method);
        }
    }
    item.into_token_stream()
}

fn priority_variant(root: &TokenStream, priority: &str) -> TokenStream {
    let variant = format_ident!("{}", capitalized(priority));
    quote!(#root::__private::Priority::#variant)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The `NotificationEndpoint` impl's body: priorities, dispatch, name.
fn endpoint_body(listener: &Listener<'_>, name: &Ident, receiver: &TokenStream) -> TokenStream {
    let root = &listener.root;
    let rt = quote!(#root::__private);
    let mut all: Vec<&str> = listener
        .handlers
        .iter()
        .flat_map(|h| h.priorities.iter().copied())
        .collect();
    all.sort_by_key(|priority| super::model::PRIORITIES.iter().position(|known| known == priority));
    all.dedup();
    let all = all.iter().map(|priority| priority_variant(root, priority));
    let arms = listener
        .handlers
        .iter()
        .map(|handler| dispatch_arm(listener, handler, receiver));
    let name = name.to_string();
    quote! {
        fn priorities(&self) -> &[#rt::Priority] {
            &[#(#all),*]
        }

        fn dispatch<'a>(&'a self, notification: &'a #rt::Notification) -> #rt::Option<#rt::NotificationFuture<'a>> {
            let priority = notification.priority();
            let event_type = notification.event_type();
            let _ = (&priority, &event_type);
            #(#arms)*
            #rt::None
        }

        fn name(&self) -> &str {
            #name
        }
    }
}

/// `if` the priority and event type are the handler's, its future.
fn dispatch_arm(listener: &Listener<'_>, handler: &Handler<'_>, receiver: &TokenStream) -> TokenStream {
    let root = &listener.root;
    let rt = quote!(#root::__private);
    let method = &handler.sig.ident;
    let cfgs = handler.cfg_attrs();
    let priorities = handler
        .priorities
        .iter()
        .map(|priority| priority_variant(root, priority));
    let pattern = match &handler.event_type {
        Some(pattern) => quote!(#rt::event_type_matches(#pattern, event_type)),
        None => quote!(true),
    };
    let payload = handler.payload.expect("checked by the model");
    // Spanned at the return type: a type that is no result is reported there.
    let span = match &handler.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => handler.sig.ident.span(),
    };
    let result = respan(quote!(#root::__private::notification_result), span);
    let returned = quote_spanned!(span=> returned);
    let call = quote! {
        let #returned = #receiver.#method(notification, payload).await;
        #result(#returned)
    };
    quote! {
        #(#cfgs)*
        {
            if #rt::matches!(priority, #(#priorities)|*) && #pattern {
                return #rt::Some(#rt::Box::pin(async move {
                    let payload = #rt::payload::<#payload>(notification)?;
                    #call
                }));
            }
        }
    }
}

/// `<Trait>Listener<S>` (serves implementations) and `<Trait>Notifier` (sends typed).
fn trait_items(listener: &Listener<'_>, name: &Ident) -> TokenStream {
    let root = &listener.root;
    let rt = quote!(#root::__private);
    let vis = &listener.vis;
    let wrapper = format_ident!("{name}Listener");
    let notifier = format_ident!("{name}Notifier");
    let body = endpoint_body(listener, name, &quote!(self.inner));
    let wrapper_doc = format!(
        "Serves an implementation of [`{name}`] as a notification endpoint: pass \
         `{wrapper}::new(implementation)` to `NotificationListenerBuilder::endpoint`. Generated by `#[notifications]`."
    );
    let notifier_doc = format!(
        "Sends the notifications [`{name}`] handles, typed: one method per handler with one priority and \
         an exact event type. Generated by `#[notifications]`."
    );
    let methods = listener.handlers.iter().filter_map(|handler| {
        let (priority, event_type) = handler.sends()?;
        let method = &handler.sig.ident;
        let payload = handler.payload?;
        let priority = priority_variant(root, priority);
        let cfgs = handler.cfg_attrs();
        let docs = handler.doc_attrs();
        Some(quote! {
            #(#cfgs)*
            #(#docs)*
            #vis async fn #method(&self, ctx: &#rt::Context, payload: &#payload) -> #rt::Result<(), #rt::Error> {
                self.notifier.notify(ctx, #priority, #event_type, payload).await
            }
        })
    });
    let wrapper_struct = wrapper_struct(root, vis, &wrapper, &wrapper_doc);
    quote! {
        #wrapper_struct

        impl<__S: #name> #rt::NotificationEndpoint for #wrapper<__S> {
            #body
        }

        #[doc = #notifier_doc]
        #[derive(#rt::Clone, #rt::Debug)]
        #[allow(unreachable_pub)]
        #vis struct #notifier {
            notifier: #rt::Notifier,
        }

        #[allow(unreachable_pub)]
        impl #notifier {
            /// Sends through `notifier` (its publisher id, topics, driver and codec).
            #vis fn new(notifier: #rt::Notifier) -> Self {
                Self { notifier }
            }

            /// The notifier it sends through.
            #vis fn notifier(&self) -> &#rt::Notifier {
                &self.notifier
            }

            #(#methods)*
        }
    }
}

pub(super) fn expand(listener: &Listener<'_>) -> TokenStream {
    let name = listener.name.as_ref().expect("checked before expanding");
    let root = &listener.root;
    match listener.input {
        Input::Impl(item) => {
            let user = stripped(listener.input);
            let self_ty = &item.self_ty;
            let body = endpoint_body(listener, name, &quote!(self));
            quote! {
                #user
                #[allow(clippy::all)]
                const _: () = {
                    impl #root::__private::NotificationEndpoint for #self_ty {
                        #body
                    }
                };
            }
        }
        Input::Trait(item) => {
            let user = rewritten_trait(root, item);
            let items = trait_items(listener, name);
            quote! {
                #user
                #items
            }
        }
    }
}
