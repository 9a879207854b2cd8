//! The trait form: a contract shared by client and server crates, with a
//! default method, served through the generated dispatcher.

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Server, Target, endpoint};

mod api {
    use rpc_core::{Context, endpoint};

    /// The contract.
    #[endpoint(namespace = "kv", version = "3.1")]
    pub trait Store {
        /// Reads a key.
        async fn get(&self, ctx: &Context, key: String) -> Option<String>;

        /// Has a default body.
        async fn health(&self, _ctx: &Context) -> String {
            "ok".to_owned()
        }
    }
}

use api::{Store, StoreClient, StoreDispatcher};

struct Memory;

impl Store for Memory {
    async fn get(&self, _ctx: &Context, key: String) -> Option<String> {
        (key == "a").then(|| "1".to_owned())
    }
}

// An endpoint with no namespace or version is fine too.
#[endpoint]
trait Plain {
    async fn ping(&self, ctx: &Context);
}

#[tokio::main]
async fn main() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("kv", "a"))
        .endpoint(StoreDispatcher::new(Memory))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let store = StoreClient::new(Client::new(transport, Target::topic("kv")));
    let ctx = Context::new();
    assert_eq!(store.get(&ctx, "a".into()).await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.get(&ctx, "b".into()).await.unwrap(), None);
    assert_eq!(store.health(&ctx).await.unwrap(), "ok");
    let _: &Memory = StoreDispatcher::new(Memory).get_ref();
    server.stop();
    server.wait().await;
}
