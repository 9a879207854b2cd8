//! Credentials never show: not in errors, not in `Debug` output, not in logs,
//! whether the URL is malformed, the password is wrong, or the connection
//! drops and comes back.

use std::time::Duration;

use rpc_core::{Client, Context, Target};
use rpc_tests::api::CalculatorClient;
use rpc_tests::broker::{self, FAST_RECONNECT, TEST_OPTIONS};
use rpc_tests::conformance::{start_server, unique_topic};
use rpc_tests::logs::Logs;
use rpc_tests::proxy::{Proxy, through, upstream_of};

const SECRET: &str = "pa55-w0rd-s3cret";

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the password: {text}");
}

#[tokio::test]
async fn malformed_urls_and_wrong_passwords_hide_the_password() {
    let logs = Logs::global();
    rpc_amqp::register();
    for url in [
        format!("amqp://guest:{SECRET}@127.0.0.1:notaport/%2f"),
        format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f?heartbeat=often"),
        format!("kafka://guest:{SECRET}@127.0.0.1:9092/"),
    ] {
        let error = rpc_core::transport_from_url(&url).await.expect_err(&url);
        assert_hidden("an URL error", &format!("{error} / {error:?}"));
        assert!(error.to_string().contains("***"), "the URL is shown redacted: {error}");
    }

    // The broker refuses the password.
    let url = format!(
        "amqp://guest:{SECRET}@{}/%2f?connect_timeout=5",
        upstream_of(&broker::url())
    );
    let error = rpc_amqp::connect(&url).await.expect_err("a wrong password");
    let text = format!("{error} / {error:?}");
    assert_hidden("a refused login", &text);
    assert!(
        text.to_lowercase().contains("access") || text.to_lowercase().contains("refused"),
        "{text}"
    );

    let config = rpc_amqp::AmqpConfig::from_url(&url).unwrap();
    assert_hidden("AmqpConfig's Debug", &format!("{config:?}"));
    assert_hidden("the logs", &logs.text());
}

#[tokio::test]
async fn a_connection_that_drops_and_returns_logs_no_password() {
    let logs = Logs::global();
    // The test broker's password is not secret ("guest"); look for it in
    // its URL form.
    let password_in_url = ":guest@";
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let url = through(
        &broker::url(),
        &[proxy.port()],
        &format!("{TEST_OPTIONS}&{FAST_RECONNECT}"),
    );
    let topic = unique_topic("credentials");
    let transport = broker::connect_url(&url).await;
    let (server, _) = start_server(transport.clone(), &topic, "s1").await;
    let calc = CalculatorClient::new(Client::new(transport.clone(), Target::topic(&topic)));
    assert_eq!(calc.add(&Context::new(), 1, 2).await.unwrap(), 3);
    proxy.cut().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while calc.add(&Context::new(), 1, 2).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no recovery");
    }
    let debug = format!("{transport:?} {server:?} {calc:?}");
    assert!(!debug.contains(password_in_url), "Debug shows the password: {debug}");
    server.stop();
    server.wait().await;
    let logs = logs.text();
    assert!(
        logs.contains("reconnect") || logs.contains("connected"),
        "the outage was logged: {logs}"
    );
    assert!(!logs.contains(password_in_url), "the logs show the password: {logs}");
}
