//! The conformance suite on RabbitMQ (`RPC_TEST_AMQP_URL`).

rpc_tests::conformance_tests!(rpc_tests::broker::connect);
