//! Rolling upgrades: old and new clients and servers of one API, with and
//! without version caps, on `memory://` and on RabbitMQ in both codecs; and
//! the API compatibility check on the same API.

use rpc_core::Stub;
use rpc_tests::upgrade::{self, v1_1, v1_2};

mod memory {
    rpc_tests::upgrade_tests!(|| async {
        rpc_core::transport_from_url("memory://upgrade")
            .await
            .expect("memory transport")
    });
}

mod amqp {
    rpc_tests::upgrade_tests!(rpc_tests::broker::connect);
}

mod amqp_oslo {
    rpc_tests::upgrade_tests!(rpc_tests::broker::connect_oslo);
}

#[test]
fn the_two_versions_are_compatible() {
    upgrade::versions_are_compatible();
}

#[test]
fn breaking_changes_are_reported() {
    upgrade::breaking_changes_are_reported();
}

/// The API as released: `api/inventory-*.json` (accept a change with
/// `RPC_API_UPDATE=1 cargo test -p rpc-tests --test upgrade`).
#[test]
fn the_inventory_api_matches_its_snapshots() {
    rpc_core::api::assert_compatible(&v1_1::InventoryClient::describe(), "api/inventory-1.1.json");
    rpc_core::api::assert_compatible(&v1_2::InventoryClient::describe(), "api/inventory-1.2.json");
}

/// A copy of a capped stub drops its cap as oslo's `prepare(version_cap=None)`
/// does: it could only set one, and a capped stub stayed capped.
#[tokio::test]
async fn a_prepared_copy_may_drop_the_version_cap() {
    let broker = rpc_core::transport::memory::Broker::new();
    let capped = v1_2::InventoryClient::new(rpc_core::Client::new(
        broker.transport(),
        rpc_core::Target::topic("nobody_listens"),
    ))
    .prepare()
    .version_cap(rpc_core::Version::new(1, 1))
    .into_inner();
    let ctx = rpc_core::Context::new();
    let refused = capped.locations(&ctx).await.unwrap_err();
    assert!(matches!(refused, rpc_core::Error::VersionCap { .. }), "{refused:?}");
    // Uncapped, it goes out (and finds nobody listening).
    let sent = capped.prepare().no_version_cap().locations(&ctx).await.unwrap_err();
    assert!(matches!(sent, rpc_core::Error::NoListener { .. }), "{sent:?}");
}
