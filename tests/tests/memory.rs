//! The conformance suite on the in-memory transport.

rpc_tests::conformance_tests!(|| async {
    rpc_core::transport_from_url("memory://conformance")
        .await
        .expect("memory transport")
});
