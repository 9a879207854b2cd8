//! A rolling upgrade, as a user lives it: the `inventory` API at 1.1 (what
//! old services run) and at 1.2 (what new ones run), as two crates would
//! ship it, and scenarios mixing old and new clients and servers.
//!
//! 1.2 adds an optional argument to `add` (`location`, `since = "1.2"`) and a
//! method (`locations`, `since = "1.2"`). 1.1 added `total`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_core::{Client, Context, Error, ErrorCode, Server, Stub, Target, Transport, Version};
use serde::{Deserialize, Serialize};

/// Why an `add` fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockError {
    /// Nothing to add.
    NothingToAdd {
        /// The item.
        item: String,
    },
}

impl fmt::Display for StockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StockError::NothingToAdd { item } => write!(f, "nothing to add to `{item}`"),
        }
    }
}

impl rpc_core::ErrorClass for StockError {
    const CLASS: &'static str = "StockError";
}

/// What old services run: the API at 1.1.
pub mod v1_1 {
    use rpc_core::{Context, endpoint};

    use super::StockError;

    /// The inventory API, version 1.1.
    #[endpoint(namespace = "inventory", version = "1.1")]
    pub trait Inventory {
        /// Adds `count` of `item`; returns the new stock of the item.
        async fn add(&self, ctx: &Context, item: String, count: u32) -> Result<u64, StockError>;

        /// The stock of all items.
        #[rpc(since = "1.1")]
        async fn total(&self, ctx: &Context) -> u64;
    }
}

/// What new services run: the API at 1.2.
pub mod v1_2 {
    use rpc_core::{Context, endpoint};

    use super::StockError;

    /// The inventory API, version 1.2.
    #[endpoint(namespace = "inventory", version = "1.2")]
    pub trait Inventory {
        /// Adds `count` of `item`, at `location` when given (new in 1.2).
        async fn add(
            &self,
            ctx: &Context,
            item: String,
            count: u32,
            #[rpc(since = "1.2")] location: Option<String>,
        ) -> Result<u64, StockError>;

        /// The stock of all items.
        #[rpc(since = "1.1")]
        async fn total(&self, ctx: &Context) -> u64;

        /// The locations used so far (new in 1.2).
        #[rpc(since = "1.2")]
        async fn locations(&self, ctx: &Context) -> Vec<String>;
    }
}

/// A 1.2 that breaks its callers: `count` gone from `add`, `total` gone.
pub mod broken {
    use std::fmt;

    use rpc_core::{Context, endpoint};
    use serde::{Deserialize, Serialize};

    /// Why an `add` fails, with a field its callers of 1.1 cannot decode
    /// without.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum StockError {
        /// Nothing to add.
        NothingToAdd {
            /// The item.
            item: String,
            /// Where it was not added: required, a breaking change.
            bin: u32,
        },
    }

    impl fmt::Display for StockError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("nothing to add")
        }
    }

    /// The inventory API, broken.
    #[endpoint(namespace = "inventory", version = "1.2")]
    pub trait Inventory {
        /// Adds one `item`.
        async fn add(&self, ctx: &Context, item: String) -> Result<u64, StockError>;
    }
}

/// A store serving either version.
#[derive(Debug, Clone, Default)]
pub struct Store {
    stock: Arc<Mutex<BTreeMap<String, u64>>>,
    locations: Arc<Mutex<Vec<String>>>,
}

impl Store {
    fn add(&self, item: String, count: u32, location: Option<String>) -> Result<u64, StockError> {
        if count == 0 {
            return Err(StockError::NothingToAdd { item });
        }
        if let Some(location) = location {
            self.locations.lock().unwrap().push(location);
        }
        let mut stock = self.stock.lock().unwrap();
        let entry = stock.entry(item).or_default();
        *entry += u64::from(count);
        Ok(*entry)
    }

    fn total(&self) -> u64 {
        self.stock.lock().unwrap().values().sum()
    }
}

impl v1_1::Inventory for Store {
    async fn add(&self, _ctx: &Context, item: String, count: u32) -> Result<u64, StockError> {
        Store::add(self, item, count, None)
    }

    async fn total(&self, _ctx: &Context) -> u64 {
        Store::total(self)
    }
}

impl v1_2::Inventory for Store {
    async fn add(&self, _ctx: &Context, item: String, count: u32, location: Option<String>) -> Result<u64, StockError> {
        Store::add(self, item, count, location)
    }

    async fn total(&self, _ctx: &Context) -> u64 {
        Store::total(self)
    }

    async fn locations(&self, _ctx: &Context) -> Vec<String> {
        self.locations.lock().unwrap().clone()
    }
}

/// Which version a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// 1.1.
    Old,
    /// 1.2.
    New,
}

/// A server of `release` on a fresh topic, and a client (on another
/// transport) for that topic.
pub async fn deploy<C, F>(connect: C, scenario: &str, release: Release) -> (Server, Client)
where
    C: Fn() -> F,
    F: Future<Output = Transport>,
{
    let topic = crate::conformance::unique_topic(scenario);
    let builder = Server::builder(connect().await, Target::server(&topic, "inventory-1"));
    let server = match release {
        Release::Old => builder.endpoint(v1_1::InventoryDispatcher::new(Store::default())),
        Release::New => builder.endpoint(v1_2::InventoryDispatcher::new(Store::default())),
    }
    .build()
    .expect("a valid server");
    server.start().await.expect("the server starts");
    let client = Client::new(connect().await, Target::topic(&topic)).timeout(Duration::from_secs(10));
    (server, client)
}

async fn shutdown(server: Server) {
    server.stop();
    server.wait().await;
}

fn remote_code<T: fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    match result {
        Err(Error::Remote(remote)) => remote.code(),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

fn refused_by_cap<T: fmt::Debug>(result: Result<T, Error>, method: &str, argument: Option<&str>, needed: Version) {
    match result {
        Err(Error::VersionCap {
            method: refused,
            argument: raised_by,
            version,
            cap,
        }) => {
            assert_eq!(refused, method);
            assert_eq!(raised_by.as_deref(), argument);
            assert_eq!(version, Some(needed));
            let message = Error::VersionCap {
                method: refused,
                argument: raised_by,
                version,
                cap,
            }
            .to_string();
            if let Some(argument) = argument {
                assert!(message.contains(&format!("with argument `{argument}`")), "{message}");
            }
        }
        other => panic!("expected a local version-cap refusal, got {other:?}"),
    }
}

const V1_1: Version = Version::new(1, 1);
const V1_2: Version = Version::new(1, 2);

/// A new client (1.2, no cap) against an old server (1.1): everything the
/// old server has works, `None` for the new argument included; what needs
/// 1.2 is refused by the server with `UnsupportedVersion`.
pub async fn new_client_old_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let (server, client) = deploy(connect, "new_to_old", Release::Old).await;
    let inventory = v1_2::InventoryClient::new(client);
    let ctx = Context::new();
    assert_eq!(inventory.add(&ctx, "bolt".into(), 3, None).await.unwrap(), Ok(3));
    assert_eq!(inventory.total(&ctx).await.unwrap(), 3);
    assert_eq!(
        inventory.add(&ctx, "nut".into(), 0, None).await.unwrap(),
        Err(StockError::NothingToAdd { item: "nut".into() }),
        "typed errors cross versions"
    );
    assert_eq!(
        remote_code(inventory.add(&ctx, "bolt".into(), 1, Some("shelf".into())).await),
        ErrorCode::UnsupportedVersion,
        "sending the 1.2 argument asks for 1.2"
    );
    assert_eq!(
        remote_code(inventory.locations(&ctx).await),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(inventory.total(&ctx).await.unwrap(), 3, "the refused call did not run");
    shutdown(server).await;
}

/// The same client capped at 1.1 during the upgrade: what needs 1.2 is
/// refused before sending, naming the argument that needs it; code that
/// asks `can_send_version` picks what the old servers understand.
pub async fn capped_client_old_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let (server, client) = deploy(connect, "capped_to_old", Release::Old).await;
    let inventory: v1_2::InventoryClient = v1_2::InventoryClient::new(client).prepare().version_cap(V1_1).into();
    let ctx = Context::new();
    assert!(inventory.can_send_version(V1_1));
    assert!(!inventory.can_send_version(V1_2));
    assert_eq!(inventory.add(&ctx, "bolt".into(), 2, None).await.unwrap(), Ok(2));
    assert_eq!(inventory.total(&ctx).await.unwrap(), 2);
    refused_by_cap(
        inventory.add(&ctx, "bolt".into(), 1, Some("shelf".into())).await,
        "add",
        Some("location"),
        V1_2,
    );
    refused_by_cap(inventory.locations(&ctx).await, "locations", None, V1_2);
    // As nova's rpcapi modules do: send the new argument only when the cap allows.
    let location = inventory.can_send_version(V1_2).then(|| "shelf".to_owned());
    assert_eq!(inventory.add(&ctx, "bolt".into(), 1, location).await.unwrap(), Ok(3));
    // A cap of 1.0 still allows the methods of 1.0.
    let oldest = inventory.prepare().version_cap(Version::new(1, 0));
    assert_eq!(oldest.add(&ctx, "nut".into(), 1, None).await.unwrap(), Ok(1));
    refused_by_cap(oldest.total(&ctx).await, "total", None, V1_1);
    shutdown(server).await;
}

/// Once every server runs 1.2, the cap is raised (or dropped) and the new
/// argument and method work.
pub async fn new_client_new_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let (server, client) = deploy(connect, "new_to_new", Release::New).await;
    let capped = v1_2::InventoryClient::new(client).prepare().version_cap(V1_2);
    let ctx = Context::new();
    assert_eq!(
        capped.add(&ctx, "bolt".into(), 2, Some("shelf".into())).await.unwrap(),
        Ok(2)
    );
    assert_eq!(capped.add(&ctx, "bolt".into(), 1, None).await.unwrap(), Ok(3));
    assert_eq!(capped.locations(&ctx).await.unwrap(), ["shelf"]);
    assert_eq!(capped.total(&ctx).await.unwrap(), 3);
    shutdown(server).await;
}

/// An old client (1.1) against a new server (1.2): its requests, without
/// the new argument, are served as before.
pub async fn old_client_new_server<C: Fn() -> F, F: Future<Output = Transport>>(connect: C) {
    let (server, client) = deploy(connect, "old_to_new", Release::New).await;
    let inventory = v1_1::InventoryClient::new(client.clone());
    let ctx = Context::new();
    assert_eq!(inventory.add(&ctx, "bolt".into(), 4).await.unwrap(), Ok(4));
    assert_eq!(inventory.total(&ctx).await.unwrap(), 4);
    assert_eq!(
        inventory.add(&ctx, "bolt".into(), 0).await.unwrap(),
        Err(StockError::NothingToAdd { item: "bolt".into() })
    );
    // The new server saw no location.
    let newer = v1_2::InventoryClient::new(client);
    assert!(newer.locations(&ctx).await.unwrap().is_empty());
    shutdown(server).await;
}

/// The two versions compare as a compatible change.
pub fn versions_are_compatible() {
    let report = rpc_core::api::compare(&v1_1::InventoryClient::describe(), &v1_2::InventoryClient::describe());
    assert!(report.is_compatible(), "{report}");
    assert_eq!(report.changes.len(), 2, "{report}");
}

/// A change that breaks callers, made through the macro, is reported with
/// the method and argument it breaks.
pub fn breaking_changes_are_reported() {
    let report = rpc_core::api::compare(&v1_1::InventoryClient::describe(), &broken::InventoryClient::describe());
    assert!(!report.is_compatible(), "{report}");
    let text = report.to_string();
    assert!(text.contains("`add(count)`: removed or renamed"), "{text}");
    assert!(text.contains("`total`: removed or renamed"), "{text}");
    // A field added to the error type, whose name did not change.
    assert!(
        text.contains("breaking: type `StockError::NothingToAdd.bin`: a required field added"),
        "{text}"
    );
}

/// Instantiates the rolling-upgrade scenarios for a transport (see
/// [`conformance_tests!`](crate::conformance_tests)).
#[macro_export]
macro_rules! upgrade_tests {
    ($connect:expr) => {
        $crate::upgrade_tests!(@tests $connect;
            new_client_old_server,
            capped_client_old_server,
            new_client_new_server,
            old_client_new_server,
        );
    };
    (@tests $connect:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::upgrade::$name($connect).await;
            }
        )*
    };
}
