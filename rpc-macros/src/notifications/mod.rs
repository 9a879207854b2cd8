//! `#[notifications]`: an `impl` block or a trait of notification handlers,
//! made a listener endpoint (and, for a trait, a typed notifier).
//!
//! `model` lowers and checks the input (every misuse reported at once,
//! spanned), `expand` emits the code.

mod expand;
mod model;

use proc_macro2::TokenStream;

use crate::ctxt::{self, Ctxt};
use crate::input;

/// The per-method attribute naming priorities and an event-type pattern.
pub(crate) const ON_ATTR: &str = "on";

/// Expands `#[notifications(attr)] item`. On error the user's item is still
/// emitted (without our attributes), followed by every error found.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let input = match input::parse_for(item.clone(), "notifications") {
        Ok(input) => input,
        Err(error) => return ctxt::unparsed(item, error),
    };
    let cx = Ctxt::new();
    let listener = model::lower(&cx, &input, attr);
    cx.finish(
        || listener.name.is_some().then(|| expand::expand(&listener)),
        || expand::stripped(&input),
    )
}
