//! The conformance suite on the in-memory transport, clients sending
//! oslo.messaging's JSON.

rpc_tests::conformance_tests!(|| async {
    rpc_core::transport_from_url("memory://conformance-oslo?codec=oslo")
        .await
        .expect("memory transport")
});
