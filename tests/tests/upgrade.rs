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

/// An argument a new release stops using, named `_flavor` as rustc
/// suggests, keeps its name on the wire: old clients sending `flavor` are
/// served, and the check finds nothing that breaks them (until 2026-12-05
/// it travelled as `_flavor`, and old clients' requests were refused).
mod an_unused_argument {
    use rpc_core::{Client, Context, Server, Stub, Target};

    // Only its client is used: its server is the old release.
    #[allow(dead_code)]
    mod old {
        use rpc_core::{Context, endpoint};

        pub(crate) struct Boot;

        #[endpoint(version = "1.0")]
        impl Boot {
            async fn boot(&self, _ctx: &Context, flavor: String) -> String {
                flavor
            }
        }
    }

    mod new {
        use rpc_core::{Context, endpoint};

        pub(crate) struct Boot;

        #[endpoint(version = "1.0")]
        impl Boot {
            async fn boot(&self, _ctx: &Context, _flavor: String) -> String {
                "small".to_owned()
            }
        }
    }

    #[tokio::test]
    async fn keeps_its_name_on_the_wire() {
        let transport = rpc_core::transport_from_url("memory://unused-argument").await.unwrap();
        let server = Server::builder(transport.clone(), Target::server("boot", "b1"))
            .endpoint(new::Boot)
            .build()
            .unwrap();
        server.start().await.unwrap();
        let old_client = old::BootClient::new(Client::new(transport, Target::topic("boot")));
        let booted = old_client.boot(&Context::new(), "large".to_owned()).await;
        assert_eq!(booted.unwrap(), "small");
        let report = rpc_core::api::compare(&old::BootClient::describe(), &new::BootClient::describe());
        assert!(report.is_compatible(), "{report:?}");
        server.stop();
        server.wait().await;
    }
}
