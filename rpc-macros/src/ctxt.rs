//! The error accumulator: every semantic error is recorded, then reported at once.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects errors while the model is built and validated. [`Ctxt::check`]
/// must be called exactly once; dropping an unchecked context panics, so
/// that no error is ever silently lost.
pub(crate) struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub(crate) fn new() -> Ctxt {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error spanning the tokens of `obj`.
    pub(crate) fn error_spanned_by<T: ToTokens>(&self, obj: T, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(obj.into_token_stream(), message));
    }

    /// Records a parse error.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check()")
            .push(error);
    }

    /// Combines the recorded errors into one.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.borrow_mut().take().expect("Ctxt checked twice").into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

impl Ctxt {
    /// Checks the context and assembles an attribute macro's output: the
    /// `expansion` when no error was recorded (and it has one), otherwise
    /// the user's item without our attributes (`stripped`), followed by
    /// every error. With `RPC_MACROS_DEBUG` set, the output is printed.
    pub(crate) fn finish(
        self,
        expansion: impl FnOnce() -> Option<TokenStream>,
        stripped: impl FnOnce() -> TokenStream,
    ) -> TokenStream {
        let out = match self.check() {
            Ok(()) => expansion().unwrap_or_else(stripped),
            Err(errors) => {
                let mut out = stripped();
                out.extend(errors.to_compile_error());
                out
            }
        };
        if std::env::var_os("RPC_MACROS_DEBUG").is_some() {
            eprintln!("{out}");
        }
        out
    }
}

/// An item that did not parse, returned as it came, followed by the error.
pub(crate) fn unparsed(mut item: TokenStream, error: syn::Error) -> TokenStream {
    item.extend(error.to_compile_error());
    item
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("Ctxt dropped without check()");
        }
    }
}

/// A set-once slot for an attribute argument: setting it twice records
/// "duplicate `name` argument" at the second occurrence.
pub(crate) struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: &'static str,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    pub(crate) fn none(cx: &'c Ctxt, name: &'static str) -> Attr<'c, T> {
        Attr { cx, name, value: None }
    }

    pub(crate) fn set<A: ToTokens>(&mut self, obj: A, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(obj, format_args!("duplicate `{}` argument", self.name));
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;

    use super::*;

    #[test]
    fn errors_are_combined() {
        let cx = Ctxt::new();
        cx.syn_error(syn::Error::new(Span::call_site(), "first"));
        cx.syn_error(syn::Error::new(Span::call_site(), "second"));
        let error = cx.check().unwrap_err();
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn attr_is_set_once() {
        let cx = Ctxt::new();
        let mut attr = Attr::none(&cx, "version");
        attr.set(quote::quote!(a), 1);
        attr.set(quote::quote!(b), 2);
        assert_eq!(attr.get(), Some(1));
        let error = cx.check().unwrap_err();
        assert_eq!(error.to_string(), "duplicate `version` argument");
    }
}
