//! The RabbitMQ broker the broker tests run against.
//!
//! Tests read `RPC_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
//! When no broker answers, they fail with a message saying how to start one:
//! they are never skipped.

use rpc_core::Transport;

/// The default broker URL.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The broker URL under test.
pub fn url() -> String {
    std::env::var("RPC_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url()` with extra query options (`"a=1&b=2"`).
pub fn url_with(options: &str) -> String {
    let url = url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{options}")
}

/// Options every test transport uses: queues expire soon after the test, so
/// the shared broker does not fill up with test queues.
pub const TEST_OPTIONS: &str = "shared_queues_ttl=60&transient_queues_ttl=60";

/// Options for fault tests: reconnect fast (0.2 s, at most 1 s apart),
/// notice a silent peer within 4 s (heartbeat 2 s), give up connecting after 2 s.
pub const FAST_RECONNECT: &str = "retry_interval=0.2&max_retry_interval=1&heartbeat=2&connect_timeout=2";

/// A fresh transport on the broker under test; panics with instructions
/// when the broker is not reachable.
pub async fn connect() -> Transport {
    connect_url(&url_with(TEST_OPTIONS)).await
}

/// A fresh transport on `url`; panics with instructions when it fails.
pub async fn connect_url(url: &str) -> Transport {
    match rpc_amqp::connect(url).await {
        Ok(transport) => transport,
        Err(error) => panic!(
            "cannot reach the test broker ({}): {error}\n\
             Start RabbitMQ (`rabbitmq-server -detached`), or run the suite with `scripts/test.sh`, \
             which starts it; set RPC_TEST_AMQP_URL to use another broker.",
            rpc_core::transport::redact_url(url)
        ),
    }
}

/// A fresh transport on the broker under test whose clients send
/// oslo.messaging's JSON.
pub async fn connect_oslo() -> Transport {
    connect_url(&url_with(&format!("{TEST_OPTIONS}&codec=oslo"))).await
}
