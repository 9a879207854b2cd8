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
