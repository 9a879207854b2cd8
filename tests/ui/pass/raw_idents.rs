//! Raw identifiers are remote under their plain names.

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Server, Target, endpoint, json};

struct Api;

#[endpoint]
impl Api {
    async fn r#type(&self, _ctx: &Context, r#match: u32) -> u32 {
        r#match
    }
}

#[tokio::main]
async fn main() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("raw", "a")).endpoint(Api).build().unwrap();
    server.start().await.unwrap();
    let client = Client::new(transport, Target::topic("raw"));
    assert_eq!(ApiClient::new(client.clone()).r#type(&Context::new(), 7).await.unwrap(), 7);
    let untyped: u32 = client.call(&Context::new(), "type", json!({"match": 8})).await.unwrap();
    assert_eq!(untyped, 8);
    server.stop();
    server.wait().await;
}
