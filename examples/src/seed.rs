//! The seed's server side: the two endpoints of its `RPC-server.py`.

use rpc_core::{Context, Server, ServerHandle, Target, Transport, endpoint};

/// The seed's `TestEndpoint`: echoes its argument.
#[derive(Debug)]
pub struct TestEndpoint;

#[endpoint]
impl TestEndpoint {
    /// Returns `arg`.
    async fn test(&self, _ctx: &Context, arg: String) -> String {
        tracing::info!("------ TestEndpoint.test --------");
        arg
    }
}

/// The seed's `ServerControlEndpoint`: lets a client stop the server.
#[derive(Debug)]
pub struct ServerControl {
    /// The server to stop.
    pub server: ServerHandle,
}

#[endpoint(namespace = "control", version = "2.0")]
impl ServerControl {
    /// Stops the server: it finishes what it is doing and takes nothing new.
    async fn stop(&self, _ctx: &Context) {
        tracing::info!("------ ServerControlEndpoint.stop --------");
        self.server.stop();
    }
}

/// The seed's server: topic `test`, server `server1`, both endpoints.
pub fn server(transport: Transport) -> Result<Server, rpc_core::Error> {
    let builder = Server::builder(transport, Target::server("test", "server1"));
    let control = ServerControl {
        server: builder.handle(),
    };
    builder.endpoint(TestEndpoint).endpoint(control).build()
}

#[cfg(test)]
mod tests {
    use rpc_core::caller::Local;
    use rpc_core::{Context, ErrorCode, ServerHandle};

    use super::*;

    /// The seed's endpoints, through their typed clients, with no transport:
    /// the `Local` caller runs them through the dispatcher in this process.
    #[tokio::test(flavor = "current_thread")]
    async fn the_seed_endpoints_answer_through_a_local_caller() {
        let handle = ServerHandle::default();
        let local = Local::builder()
            .endpoint(TestEndpoint)
            .endpoint(ServerControl { server: handle.clone() })
            .build();
        let ctx = Context::new();
        let test = TestEndpointClient::new(local.clone());
        assert_eq!(test.test(&ctx, "myarg".into()).await.unwrap(), "myarg");
        ServerControlClient::new(local.clone()).cast().stop(&ctx).await.unwrap();
        assert!(!handle.is_running());

        // The control endpoint is not reachable in the default namespace.
        let no_args = rpc_core::json!({});
        let wrong = rpc_core::caller::Invocation::new("stop", &no_args);
        let refused = rpc_core::caller::Caller::call(&local, &ctx, wrong).await.unwrap_err();
        assert_eq!(refused.remote().map(|e| e.code()), Some(ErrorCode::NoSuchMethod));
    }
}
