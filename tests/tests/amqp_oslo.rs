//! The conformance suite on RabbitMQ, clients sending oslo.messaging's JSON.

rpc_tests::conformance_tests!(rpc_tests::broker::connect_oslo);
