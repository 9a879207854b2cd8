//! What the types of a remote method must be, and how generated code tells
//! a method's result from its error.
//!
//! `#[endpoint]` checks every argument and result type against these traits
//! at the type's own span; they are implemented for every type that
//! qualifies, so nothing here is implemented by hand.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::caller::{Caller, Invocation};
use crate::client::Method;
use crate::message::{Payload, Request};
use crate::{Context, Error, RemoteError, Version};

/// A type that can be a remote method's argument: sent by the client,
/// decoded by the server.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a remote method",
    label = "this type must implement `Serialize`, `DeserializeOwned` and `Send`",
    note = "arguments cross the wire: derive `serde::Serialize` and `serde::Deserialize`, and use owned types (`String`, not `&str`)"
)]
pub trait Argument: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Argument for T {}

/// An argument as the typed client sends it: encoded from a shared
/// reference, so also `Sync` (a server only decodes and moves it: its
/// dispatch needs [`Argument`] alone).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument the typed client sends",
    label = "this type must implement `Serialize`, `DeserializeOwned`, `Send` and `Sync`",
    note = "the client encodes arguments from a shared reference: no `Cell` or `RefCell` (a `Mutex` or an atomic instead)"
)]
pub trait SentArgument: Argument + Sync {}
impl<T: Argument + Sync> SentArgument for T {}

/// The request context a remote method takes first: `rpc_core`'s own.
/// Any type named `Context` reads as the context to `#[endpoint]`, which
/// sees names, not types: this bound tells another one at its span.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the request context",
    label = "the context a remote method takes is `rpc_core::Context`",
    note = "take `ctx: &rpc_core::Context` first; a type of your own named `Context` cannot be an argument (rename it, or import it under another name)"
)]
pub trait RequestContext {}
impl RequestContext for Context {}

/// A type that can be a remote method's result.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of a remote method",
    label = "this type must implement `Serialize`, `DeserializeOwned` and `Send`",
    note = "results cross the wire: derive `serde::Serialize` and `serde::Deserialize`, and use owned types"
)]
pub trait Output: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Output for T {}

/// The error type of a method returning `Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a remote method",
    label = "this type must implement `Serialize`, `DeserializeOwned`, `Display` and `Send`",
    note = "a method's error is sent back to the caller: derive `serde::Serialize` and `serde::Deserialize`, and implement `Display` (e.g. with `thiserror`)"
)]
pub trait ApplicationError: Serialize + DeserializeOwned + std::fmt::Display + Send + 'static {}
impl<T: Serialize + DeserializeOwned + std::fmt::Display + Send + 'static> ApplicationError for T {}

/// An argument added in a minor version (`#[rpc(since = "X.Y")]`): an
/// `Option`, so that callers of older versions may leave it out.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument added in a minor version",
    label = "an argument with `#[rpc(since = \"...\")]` must be an `Option`",
    note = "callers of older versions do not send it, so the method must accept its absence (`None`)"
)]
pub trait OptionalArgument {
    /// Whether the argument is left out of the request (`None`).
    fn is_absent(&self) -> bool;
}

impl<T> OptionalArgument for Option<T> {
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// Checks that a handler's future can move between threads, so that a
/// server can run it on any worker.
pub fn handler_is_send<F: Future + Send>(future: F) -> F {
    future
}

/// The namespace and version of a generated stub's request: the version the
/// method was added at, raised by the optional arguments the call sends.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// The method's name.
    pub method: &'static str,
    /// The endpoint's namespace.
    pub namespace: Option<&'static str>,
    /// The version the request needs.
    pub version: Option<Version>,
    /// The argument that raised the version above the method's, if any.
    pub raised_by: Option<&'static str>,
    /// `#[rpc(idempotent)]`: client layers may retry it.
    pub idempotent: bool,
}

impl Api {
    /// A method added at `version`, in `namespace`.
    pub const fn new(method: &'static str, namespace: Option<&'static str>, version: Option<Version>) -> Api {
        Api {
            method,
            namespace,
            version,
            raised_by: None,
            idempotent: false,
        }
    }

    /// Marks the method idempotent.
    pub const fn idempotent(mut self) -> Api {
        self.idempotent = true;
        self
    }

    /// Raises the version to `since` when the optional argument `name`,
    /// added in `since`, is sent.
    pub fn argument(mut self, name: &'static str, since: Version, sent: bool) -> Api {
        let newer = match &self.version {
            Some(version) => since.precedence() > version.precedence(),
            None => true,
        };
        if sent && newer {
            self.version = Some(since);
            self.raised_by = Some(name);
        }
        self
    }

    /// The request a caller sends for these arguments.
    pub fn invocation<'a, A: ?Sized>(&'a self, args: &'a A) -> Invocation<'a, A> {
        let method = Method {
            name: self.method,
            namespace: self.namespace,
            version: self.version.as_ref(),
            argument: self.raised_by,
            timeout: None,
        };
        Invocation::from_method(method, self.idempotent, args)
    }
}

/// A method's return type `R`, for telling `Result<T, E>` (whatever alias
/// names it) from any other type: `(&Returns::<R>::new()).tag()` is a
/// [`ResultTag`] for a `Result` and a [`ValueTag`] otherwise.
#[doc(hidden)]
#[derive(Debug)]
pub struct Returns<R>(PhantomData<fn() -> R>);

impl<R> Returns<R> {
    /// The probe.
    pub const fn new() -> Returns<R> {
        Returns(PhantomData)
    }
}

impl<R> Default for Returns<R> {
    fn default() -> Returns<R> {
        Returns::new()
    }
}

/// Picked for `Returns<Result<T, E>>`: the method is fallible.
#[doc(hidden)]
pub trait ReturnsResult {
    /// What the method returns.
    type Tag;
    /// The tag.
    fn tag(&self) -> Self::Tag;
}

impl<T, E> ReturnsResult for Returns<Result<T, E>> {
    type Tag = ResultTag<T, E>;
    fn tag(&self) -> ResultTag<T, E> {
        ResultTag(PhantomData)
    }
}

/// Picked, one auto-reference later, for any other `Returns<R>`.
#[doc(hidden)]
pub trait ReturnsValue {
    /// What the method returns.
    type Tag;
    /// The tag.
    fn tag(&self) -> Self::Tag;
}

impl<R> ReturnsValue for &Returns<R> {
    type Tag = ValueTag<R>;
    fn tag(&self) -> ValueTag<R> {
        ValueTag(PhantomData)
    }
}

/// A method returning `Result<T, E>`: an `Err` goes back as a typed remote error.
#[doc(hidden)]
#[derive(Debug)]
pub struct ResultTag<T, E>(PhantomData<fn() -> (T, E)>);

/// A method returning a plain value.
#[doc(hidden)]
#[derive(Debug)]
pub struct ValueTag<R>(PhantomData<fn() -> R>);

impl<T, E> ResultTag<T, E> {
    /// Checks the types once (both the stub and the dispatcher ask at the
    /// same span, so a bad error type is reported once), and gives what
    /// sends and answers the method.
    pub fn checked(self) -> Fallible<T, E>
    where
        T: Output,
        E: ApplicationError,
    {
        Fallible {
            decode_ok: crate::client::decode_result::<T>,
            decode_err: |remote| remote.decode_data::<E>(),
            encode_ok: |request, value| request.encode_result(value),
            encode_err: |error, codec| RemoteError::application(error, codec),
        }
    }

    /// The result's and the error's type names.
    pub fn describe(self) -> (String, Option<String>) {
        (crate::api::type_name::<T>(), Some(crate::api::type_name::<E>()))
    }
}

/// A fallible method's codec, built where its types were checked.
#[doc(hidden)]
pub struct Fallible<T, E> {
    decode_ok: fn(Option<Payload>) -> Result<T, Error>,
    decode_err: fn(&RemoteError) -> Result<E, crate::CodecError>,
    encode_ok: fn(&Request, &T) -> Result<Payload, RemoteError>,
    encode_err: fn(&E, crate::Codec) -> RemoteError,
}

impl<T, E> std::fmt::Debug for Fallible<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fallible")
    }
}

impl<T, E> Fallible<T, E> {
    /// Calls the method; the method's own error comes back as `Ok(Err(e))`.
    pub async fn call<S: Caller, A: Serialize + Sync + ?Sized>(
        self,
        caller: &S,
        ctx: &Context,
        api: Api,
        args: &A,
    ) -> Result<Result<T, E>, Error> {
        match caller.call(ctx, api.invocation(args)).await {
            Ok(result) => (self.decode_ok)(result).map(Ok),
            Err(Error::Remote(remote)) if remote.code() == crate::ErrorCode::Application => {
                match (self.decode_err)(&remote) {
                    Ok(error) => Ok(Err(error)),
                    Err(source) => Err(Error::UndecodableApplicationError { error: remote, source }),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Encodes the method's result, or its error under `class`.
    pub fn reply(
        self,
        request: &Request,
        value: Result<T, E>,
        class: Option<&'static str>,
    ) -> Result<Payload, RemoteError> {
        match value {
            Ok(value) => (self.encode_ok)(request, &value),
            Err(error) => {
                let remote = (self.encode_err)(&error, request.args().codec());
                Err(match class {
                    Some(class) => remote.with_class(class),
                    None => remote,
                })
            }
        }
    }
}

impl<R> ValueTag<R> {
    /// The same tag: a plain result's type is checked where the method is.
    pub fn checked(self) -> ValueTag<R> {
        self
    }

    /// Calls the method.
    pub async fn call<S: Caller, A: Serialize + Sync + ?Sized>(
        self,
        caller: &S,
        ctx: &Context,
        api: Api,
        args: &A,
    ) -> Result<R, Error>
    where
        R: Output,
    {
        crate::client::decode_result(caller.call(ctx, api.invocation(args)).await?)
    }

    /// Encodes the method's result.
    pub fn reply(self, request: &Request, value: R, _class: Option<&'static str>) -> Result<Payload, RemoteError>
    where
        R: Output,
    {
        request.encode_result(&value)
    }

    /// The result's type name.
    pub fn describe(self) -> (String, Option<String>) {
        (crate::api::type_name::<R>(), None)
    }
}

/// The wire class of a method's error: `(&ClassOf::<R>::new()).error_class()`
/// is `Some(E::CLASS)` for a `Result<T, E>` whose `E` implements
/// [`ErrorClass`](crate::ErrorClass), `None` otherwise.
#[doc(hidden)]
#[derive(Debug)]
pub struct ClassOf<R>(PhantomData<fn() -> R>);

impl<R> ClassOf<R> {
    /// The probe.
    pub const fn new() -> ClassOf<R> {
        ClassOf(PhantomData)
    }
}

impl<R> Default for ClassOf<R> {
    fn default() -> ClassOf<R> {
        ClassOf::new()
    }
}

/// Picked when the error type names its class.
#[doc(hidden)]
pub trait NamedClass {
    /// The class.
    fn error_class(&self) -> Option<&'static str>;
}

impl<T, E: crate::ErrorClass> NamedClass for ClassOf<Result<T, E>> {
    fn error_class(&self) -> Option<&'static str> {
        Some(E::CLASS)
    }
}

/// Picked otherwise.
#[doc(hidden)]
pub trait DefaultClass {
    /// No class: the type's name.
    fn error_class(&self) -> Option<&'static str> {
        None
    }
}

impl<R> DefaultClass for &ClassOf<R> {}

/// Whether an argument's type is an `Option`, for descriptions:
/// `(&IsOption::<T>::new()).is_option()`.
#[doc(hidden)]
#[derive(Debug)]
pub struct IsOption<T>(PhantomData<fn() -> T>);

impl<T> IsOption<T> {
    /// The probe.
    pub const fn new() -> IsOption<T> {
        IsOption(PhantomData)
    }
}

impl<T> Default for IsOption<T> {
    fn default() -> IsOption<T> {
        IsOption::new()
    }
}

/// Picked for `Option<T>`.
#[doc(hidden)]
pub trait OptionProbe {
    /// `true`.
    fn is_option(&self) -> bool {
        true
    }
}

impl<T> OptionProbe for IsOption<Option<T>> {}

/// Picked otherwise.
#[doc(hidden)]
pub trait PlainProbe {
    /// `false`.
    fn is_option(&self) -> bool {
        false
    }
}

impl<T> PlainProbe for &IsOption<T> {}

/// Records the shapes of a type's named types into a description:
/// `(&Shapes::<T>::new()).record(&mut description)`. Types that are not
/// `DeserializeOwned` here (a generic parameter) record nothing.
#[doc(hidden)]
#[derive(Debug)]
pub struct Shapes<T: ?Sized>(PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> Shapes<T> {
    /// The probe.
    pub const fn new() -> Shapes<T> {
        Shapes(PhantomData)
    }
}

impl<T: ?Sized> Default for Shapes<T> {
    fn default() -> Shapes<T> {
        Shapes::new()
    }
}

/// Picked for a `DeserializeOwned` type: traces it.
#[doc(hidden)]
pub trait TracedShapes {
    /// Adds the type's shapes to `description`.
    fn record(&self, description: &mut crate::api::EndpointDescription);
}

impl<T: DeserializeOwned> TracedShapes for Shapes<T> {
    fn record(&self, description: &mut crate::api::EndpointDescription) {
        description.trace::<T>();
    }
}

/// Picked otherwise: nothing to record.
#[doc(hidden)]
pub trait NoShapes {
    /// Records nothing.
    fn record(&self, description: &mut crate::api::EndpointDescription) {
        let _ = description;
    }
}

impl<T: ?Sized> NoShapes for &Shapes<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Oops;

    impl std::fmt::Display for Oops {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("oops")
        }
    }

    impl crate::ErrorClass for Oops {
        const CLASS: &'static str = "OopsError";
    }

    type ApiResult<T> = Result<T, Oops>;

    // The borrows pick the probe's impl (auto-ref specialization): they are needed.
    #[allow(clippy::needless_borrow)]
    #[test]
    fn aliases_of_result_are_fallible() {
        assert_eq!(
            (&Returns::<ApiResult<u8>>::new()).tag().describe(),
            ("u8".to_owned(), Some("Oops".to_owned()))
        );
        assert_eq!((&Returns::<u8>::new()).tag().describe(), ("u8".to_owned(), None));
        assert_eq!((&ClassOf::<ApiResult<u8>>::new()).error_class(), Some("OopsError"));
        assert_eq!((&ClassOf::<Result<u8, String>>::new()).error_class(), None);
        assert!((&IsOption::<Option<u8>>::new()).is_option());
        assert!(!(&IsOption::<u8>::new()).is_option());
    }
}
