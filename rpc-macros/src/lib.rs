//! The `#[endpoint]` and `#[notifications]` attribute macros of `rpc-core`.
//!
//! Use it through `rpc_core::endpoint`, where it is documented: the
//! generated code reaches the runtime only through `::rpc_core::__private`,
//! so this crate is released in lockstep with `rpc-core`.
//!
//! The macro works in four stages: `input` and `args` parse the syntax,
//! `model` lowers both forms (impl block, trait) into one `Endpoint`,
//! `validate` reports every misuse at once through `ctxt::Ctxt`, and
//! `expand` emits one item per function. Set `RPC_MACROS_DEBUG=1` to print
//! the expansion to stderr.

mod args;
mod ctxt;
mod expand;
mod input;
mod model;
mod names;
mod notifications;
mod validate;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block or a trait into an RPC endpoint; see
/// `rpc_core::endpoint` for the documentation.
#[proc_macro_attribute]
pub fn endpoint(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::endpoint(attr.into(), item.into()).into()
}

/// Turns an inherent `impl` block, or a trait, of notification handlers
/// into a notification listener endpoint (and, for a trait, a typed
/// notifier); see `rpc_core::notifications` for the documentation.
#[proc_macro_attribute]
pub fn notifications(attr: TokenStream, item: TokenStream) -> TokenStream {
    notifications::expand(attr.into(), item.into()).into()
}
