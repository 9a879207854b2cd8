//! Building a server: its endpoints and settings, checked once.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::{Counters, Executor, Server, ServerHandle, Shared, Watch};
use crate::endpoint::Dispatcher;
use crate::middleware::{Middleware, Stack};
use crate::recent::RecentIds;
use crate::transport::DeliveryMode;
use crate::{Endpoint, Error, Target, Transport};

/// Builds a [`Server`]; see [`Server::builder`].
pub struct ServerBuilder {
    pub(super) transport: Transport,
    pub(super) target: Target,
    pub(super) dispatcher: Dispatcher,
    pub(super) layers: Stack,
    pub(super) executor: Executor,
    pub(super) max_message_size: usize,
    pub(super) delivery: DeliveryMode,
    pub(super) interrupt_at_deadline: bool,
    pub(super) ping: bool,
    pub(super) handle: ServerHandle,
}

impl ServerBuilder {
    /// Adds an endpoint. Requests try endpoints in the order they were added.
    pub fn endpoint(mut self, endpoint: impl Endpoint) -> ServerBuilder {
        self.dispatcher.push(Box::new(endpoint));
        self
    }

    /// Adds a layer around the dispatcher (see [`middleware`](crate::middleware)).
    /// Layers run in the order they were added: the first is the outermost,
    /// sees each request first and its outcome last. They see the requests
    /// the server admitted: unreadable, duplicate, expired and cancel
    /// messages never reach them.
    pub fn layer(mut self, layer: impl Middleware) -> ServerBuilder {
        self.layers.push(Arc::new(layer));
        self
    }

    /// How requests run (default: 64 at once).
    pub fn executor(mut self, executor: Executor) -> ServerBuilder {
        self.executor = executor;
        self
    }

    /// The largest request body the server reads (default 4 MiB); larger
    /// requests are rejected, and their callers told.
    pub fn max_message_size(mut self, bytes: usize) -> ServerBuilder {
        self.max_message_size = bytes;
        self
    }

    /// When requests are acknowledged (default [`DeliveryMode::AtMostOnce`],
    /// on receipt, as oslo.messaging). With [`DeliveryMode::AtLeastOnce`]
    /// a request is acknowledged once its method finished and its reply was
    /// sent, so a request whose server dies runs again on the next server.
    pub fn delivery_mode(mut self, mode: DeliveryMode) -> ServerBuilder {
        self.delivery = mode;
        self
    }

    /// Whether a handler still running when its caller's deadline passes is
    /// dropped (default `true`): its caller gave up, so its work is wasted.
    /// With `false`, handlers run to the end and only see the deadline
    /// through [`Context::is_cancelled`](crate::Context::is_cancelled);
    /// `#[rpc(uninterruptible)]` does the same for one method.
    pub fn interrupt_at_deadline(mut self, interrupt: bool) -> ServerBuilder {
        self.interrupt_at_deadline = interrupt;
        self
    }

    /// Answers oslo.messaging's ping (default off, as oslo's
    /// `rpc_ping_enabled`): the method [`PING_METHOD`](crate::PING_METHOD)
    /// (`oslo_rpc_server_ping`), in the default namespace at version 1.0,
    /// returns `"pong"` whatever its arguments, so liveness probes written
    /// for OpenStack services (openstack-helm's) work against this server.
    /// It is tried after the server's own endpoints, and answers before the
    /// layers: a probe carries no credentials, and must not be refused by a
    /// `Policy` or held by a limit (nor does `RequestLog` log it). An
    /// endpoint with a method of that name in the default namespace keeps
    /// it, and goes through the layers as any method: the built-in ping is
    /// then not added (as oslo, which warns), and a warning says so.
    pub fn rpc_ping(mut self, enabled: bool) -> ServerBuilder {
        self.ping = enabled;
        self
    }

    /// A handle that will stop the server being built.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Builds the server, checking the target and the settings.
    pub fn build(self) -> Result<Server, Error> {
        if self.target.topic_name().is_empty() {
            return Err(Error::InvalidTarget("a server needs a topic".to_owned()));
        }
        if self.target.server_name().is_none_or(str::is_empty) {
            return Err(Error::InvalidTarget(
                "a server needs a server name: use `Target::server(topic, server)`".to_owned(),
            ));
        }
        if self.dispatcher.is_empty() {
            return Err(Error::Config("a server needs at least one endpoint".to_owned()));
        }
        let mut dispatcher = self.dispatcher;
        // As oslo: an endpoint with a ping of its own keeps it, and the
        // built-in one (which answers before the layers) is not added.
        let own_ping = dispatcher.serves(None, crate::PING_METHOD);
        if self.ping && own_ping {
            tracing::warn!(
                method = crate::PING_METHOD,
                "an endpoint has its own ping: the built-in one is not added, and pings go through the layers"
            );
        }
        let ping = self.ping && !own_ping;
        if ping {
            dispatcher.push(Box::new(super::ping::PingEndpoint));
        }
        let limit = self.executor.limit();
        if !(1..=usize::from(u16::MAX)).contains(&limit) {
            return Err(Error::Config(format!(
                "the executor's concurrency must be between 1 and 65535, not {limit}"
            )));
        }
        let metrics = crate::metrics::ServerMetrics::new(self.target.topic_name());
        Ok(Server {
            shared: Arc::new(Shared {
                transport: self.transport,
                target: self.target,
                dispatcher,
                layers: self.layers,
                ping,
                limit,
                max_message_size: self.max_message_size,
                delivery: self.delivery,
                interrupt_at_deadline: self.interrupt_at_deadline,
                control: self.handle.control,
                recent: Mutex::new(RecentIds::holding(limit)),
                running: Arc::default(),
                counters: Counters::default(),
                watch: Watch::default(),
                metrics,
            }),
        })
    }
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("target", &self.target)
            .field("endpoints", &self.dispatcher)
            .field("layers", &self.layers.len())
            .field("executor", &self.executor)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}
