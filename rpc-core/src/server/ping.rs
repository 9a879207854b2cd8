//! oslo.messaging's built-in ping (`[DEFAULT] rpc_ping_enabled`): an
//! endpoint in the default namespace, version 1.0, whose
//! `oslo_rpc_server_ping` answers `"pong"` whatever its arguments, so a
//! liveness probe written for OpenStack services (openstack-helm's) works
//! against a Rust server.

use crate::Version;
use crate::endpoint::{Endpoint, HandlerFuture};
use crate::message::Request;

/// The ping method's name, as oslo.messaging names it.
pub const PING_METHOD: &str = "oslo_rpc_server_ping";

/// Whether `request` is oslo's ping, in the default namespace and at a
/// version its endpoint (1.0) serves, where the ping endpoint answers it.
pub(super) fn is_ping(request: &Request) -> bool {
    request.method() == PING_METHOD
        && request.namespace().is_none()
        && request.version().is_none_or(|asked| Version::new(1, 0).supports(asked))
}

/// The ping endpoint; a server adds it last, when enabled.
#[derive(Debug)]
pub(super) struct PingEndpoint;

impl Endpoint for PingEndpoint {
    fn methods(&self) -> &[&str] {
        &[PING_METHOD]
    }

    fn dispatch<'a>(&'a self, request: &'a Request) -> Option<HandlerFuture<'a>> {
        is_ping(request).then(|| pong(request))
    }
}

/// The built-in ping's answer: straight from it, not from whichever
/// endpoint takes any method (a proxy's) before it in the dispatcher.
pub(super) fn pong(request: &Request) -> HandlerFuture<'_> {
    Box::pin(std::future::ready(request.encode_result("pong")))
}
