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

/// What a test declares on the shared broker that does not expire by itself
/// (a Python server's topic queues, oslo's notification queues, an exchange
/// of the test's own), deleted when this is dropped, whether the test passed
/// or failed. Make it before what declares them, so that it drops after.
#[derive(Debug, Default)]
#[must_use = "the names are deleted when this is dropped"]
pub struct Declared {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Declared {
    /// Deletes `queues` when dropped.
    pub fn queues<I>(queues: I) -> Declared
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Declared {
            queues: queues.into_iter().map(Into::into).collect(),
            exchanges: Vec::new(),
        }
    }

    /// Deletes `exchange` too.
    pub fn and_exchange(mut self, exchange: impl Into<String>) -> Declared {
        self.exchanges.push(exchange.into());
        self
    }
}

impl Drop for Declared {
    fn drop(&mut self) {
        let queues = std::mem::take(&mut self.queues);
        let exchanges = std::mem::take(&mut self.exchanges);
        // A thread of its own: a test's runtime cannot wait on itself in a drop.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let deleting = delete(&queues, &exchanges);
                tokio::time::timeout(std::time::Duration::from_secs(10), deleting)
                    .await
                    .map_err(std::io::Error::other)?
            })
        })
        .join();
        if let Ok(Err(error)) = deleted {
            eprintln!("could not delete a test's queues: {error}");
        }
    }
}

async fn delete(queues: &[String], exchanges: &[String]) -> std::io::Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

    let connection = lapin::Connection::connect(&url(), lapin::ConnectionProperties::default())
        .await
        .map_err(std::io::Error::other)?;
    for queue in queues {
        // A channel each, so that one refused deletion does not stop the rest.
        let channel = connection.create_channel().await.map_err(std::io::Error::other)?;
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in exchanges {
        let channel = connection.create_channel().await.map_err(std::io::Error::other)?;
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
