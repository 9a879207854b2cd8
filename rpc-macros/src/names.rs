//! Every generated identifier is derived here, and nowhere else.

use proc_macro2::Ident;
use quote::format_ident;
use syn::ext::IdentExt;

use crate::model::Method;

/// Method names the client stub defines itself. (A remote method may be
/// named like a method of a trait the stub implements, `describe` or
/// `clone`: the trait's is then reached by its path,
/// `<ApiClient as Stub>::describe()`.)
pub(crate) const RESERVED_METHODS: [&str; 5] = ["new", "client", "cast", "prepare", "can_send_version"];

/// The typed client stub: `<Name>Client`.
pub(crate) fn client(name: &Ident) -> Ident {
    format_ident!("{}Client", name)
}

/// The cast form of the stub: `<Name>Cast`.
pub(crate) fn cast(name: &Ident) -> Ident {
    format_ident!("{}Cast", name)
}

/// The endpoint wrapping a trait implementation: `<Trait>Dispatcher`.
pub(crate) fn dispatcher(name: &Ident) -> Ident {
    format_ident!("{}Dispatcher", name)
}

/// The hidden struct holding a method's arguments by name.
pub(crate) fn args_struct(method: &Method<'_>) -> Ident {
    format_ident!("__rpc_args_{}", method.wire_name)
}

/// The hidden constant with a method's namespace and version.
pub(crate) fn api_const(method: &Method<'_>) -> Ident {
    format_ident!("__RPC_API_{}", method.wire_name)
}

/// The alias of the runtime's private module inside the hidden block.
pub(crate) fn runtime() -> Ident {
    format_ident!("__rpc")
}

/// The context parameter of a stub method: the method's own name for it,
/// without a leading `_` (rustdoc shows it), unless another argument has
/// that name.
pub(crate) fn context(method: &Method<'_>) -> Ident {
    let written = method
        .params
        .iter()
        .find(|param| param.is_context)
        .and_then(|param| param.ident)
        .map(|ident| ident.unraw().to_string());
    let wanted = written.as_deref().map_or("ctx", |name| name.trim_start_matches('_'));
    let taken = |name: &str| {
        method
            .wire_params()
            .any(|param| param.ident.is_some_and(|ident| ident == name))
    };
    if !wanted.is_empty() && !taken(wanted) && syn::parse_str::<Ident>(wanted).is_ok() {
        format_ident!("{}", wanted)
    } else {
        format_ident!("__rpc_ctx")
    }
}

/// The arguments of a stub's request.
pub(crate) fn args() -> Ident {
    format_ident!("__rpc_args")
}

/// The request parameter of `Endpoint::dispatch`.
pub(crate) fn request() -> Ident {
    format_ident!("__rpc_request")
}

/// The result of the user's method inside a handler.
pub(crate) fn result() -> Ident {
    format_ident!("__rpc_result")
}
