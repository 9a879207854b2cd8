//! RabbitMQ 4: a private RabbitMQ 4.0 node (from the Debian trixie root of
//! `scripts/rabbitmq4.sh`) configured as RabbitMQ 4.3 is by default, so that
//! transient non-exclusive queues and global QoS are refused. The whole
//! conformance suite runs on it with the default settings, and with quorum
//! queues everywhere. One node per test, started once. (The node runs with
//! `deprecated_features.permit.global_qos = false` too, which RabbitMQ 4.0
//! accepts but does not enforce; we use no global QoS anyway.)

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rpc_tests::broker::{self, TEST_OPTIONS};
use rpc_tests::private_broker::{NodeOptions, PrivateBroker, Release};

fn rabbit4() -> PrivateBroker {
    PrivateBroker::start_with(NodeOptions {
        release: Release::Rabbit4,
        ..NodeOptions::default()
    })
}

/// The node refuses what oslo.messaging's default topology declares: the
/// tests below would fail on it if we declared it too.
async fn refuses_transient_shared_queues(node: &PrivateBroker) {
    let connection = Connection::connect(&node.url(""), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let refused = channel
        .queue_declare(
            "transient_shared".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(refused.is_err(), "the node accepts transient non-exclusive queues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_rabbitmq_4_defaults() {
    let node = rabbit4();
    refuses_transient_shared_queues(&node).await;
    let url = node.url(TEST_OPTIONS);
    let connect = || async { broker::connect_url(&url).await };
    rpc_tests::run_conformance!(&connect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_rabbitmq_4_with_quorum_queues_everywhere() {
    let node = rabbit4();
    let url = node.url(&format!(
        "{TEST_OPTIONS}&rabbit_quorum_queue=true&rabbit_transient_quorum_queue=true&rabbit_quorum_delivery_limit=10&enable_cancel_on_failover=true"
    ));
    let connect = || async { broker::connect_url(&url).await };
    rpc_tests::run_conformance!(&connect);
}
