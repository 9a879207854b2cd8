//! Versions per method and per argument: `since` on the endpoint, on
//! methods and on optional arguments; the typed `prepare()` and
//! `can_send_version`.

use std::time::Duration;

use rpc_core::transport::memory::Broker;
use rpc_core::{Client, Context, Prepared, Server, Stub, Target, Version, endpoint};

struct Inventory;

#[endpoint(namespace = "inventory", version = "1.3", since = "1.1")]
impl Inventory {
    /// There since 1.1 (the endpoint's `since`).
    async fn count(&self, _ctx: &Context, item: String, #[rpc(since = "1.3")] location: Option<String>) -> u64 {
        item.len() as u64 + location.map_or(0, |location| location.len() as u64)
    }

    #[rpc(since = "1.2")]
    async fn list(&self, _ctx: &Context) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::main]
async fn main() {
    let transport = Broker::new().transport();
    let server = Server::builder(transport.clone(), Target::server("inventory", "a"))
        .endpoint(Inventory)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let inventory = InventoryClient::new(Client::new(transport, Target::topic("inventory")));
    let ctx = Context::new();
    let prepared: Prepared<InventoryClient> = inventory.prepare().server("a").timeout(Duration::from_secs(5));
    assert_eq!(prepared.count(&ctx, "ab".into(), Some("x".into())).await.unwrap(), 3);
    let capped: InventoryClient = inventory.prepare().version_cap(Version::new(1, 2)).into();
    assert!(capped.can_send_version(Version::new(1, 2)));
    assert!(!capped.can_send_version(Version::new(1, 3)));
    assert_eq!(capped.count(&ctx, "ab".into(), None).await.unwrap(), 2);
    assert!(capped.count(&ctx, "ab".into(), Some("x".into())).await.is_err());
    let description = InventoryClient::describe();
    assert_eq!(description.methods[0].since, Some(Version::new(1, 1)));
    server.stop();
    server.wait().await;
}
