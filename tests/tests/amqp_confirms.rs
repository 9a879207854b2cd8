//! What each message kind waits for on RabbitMQ: a call's request goes out
//! without a publisher confirm (its reply proves it routed), and a request
//! the broker returns still fails its call at once; casts keep their
//! confirms unless their client opts out (`confirm_casts(false)`), and
//! replies unless their transport does (`confirm_replies=false`);
//! `confirm_calls=true` puts calls back on confirms.

use std::time::{Duration, Instant};

use rpc_core::{Client, Context, DeliveryMode, Error, Server, Target, Transport};
use rpc_tests::api::CalculatorClient;
use rpc_tests::conformance::{start_server, unique_topic};
use rpc_tests::logs::Logs;
use rpc_tests::proxy::{Proxy, through, upstream_of};
use rpc_tests::{broker, eventually};

/// A call to a server nobody listens on: the broker returns the request,
/// and the call fails at once, not at its 30 s timeout.
async fn fails_at_once_with_no_listener(nobody: &CalculatorClient, ctx: &Context) {
    let started = Instant::now();
    let result = nobody.add(ctx, 1, 1).await;
    assert!(matches!(result, Err(Error::NoListener { .. })), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a returned request failed its call after {:?}",
        started.elapsed()
    );
}

/// Ten calls answered, one returned, one cast: what the driver counts.
async fn exercise(server_transport: Transport, client_transport: Transport) {
    let topic = unique_topic("confirms");
    let (server, _) = start_server(server_transport, &topic, "s1").await;
    let client = Client::new(client_transport, Target::topic(&topic)).timeout(Duration::from_secs(30));
    let calc = CalculatorClient::new(client.clone());
    let ctx = Context::new();
    for i in 0..10 {
        assert_eq!(calc.add(&ctx, i, 1).await.unwrap(), i + 1);
    }
    let nobody = CalculatorClient::new(client.prepare().server("nobody"));
    fails_at_once_with_no_listener(&nobody, &ctx).await;
    calc.cast().add(&ctx, 1, 1).await.unwrap();
    assert_eq!(client.transport().pending_calls(), 0);
    server.stop();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_out_unconfirmed_and_a_returned_request_still_fails_at_once() {
    let client_transport = broker::connect().await;
    exercise(broker::connect().await, client_transport.clone()).await;
    let stats = client_transport.driver_stats();
    // The ten answered calls and the returned one; not the cast.
    assert_eq!(stats.unconfirmed, 11, "{stats:?}");
    assert_eq!(stats.returned, 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_calls_waits_for_confirms_again() {
    let client_transport = broker::connect_url(&broker::url_with(&format!(
        "{}&confirm_calls=true",
        broker::TEST_OPTIONS
    )))
    .await;
    exercise(broker::connect().await, client_transport.clone()).await;
    let stats = client_transport.driver_stats();
    assert_eq!(stats.unconfirmed, 0, "{stats:?}");
    assert_eq!(stats.returned, 0, "{stats:?}");
}

/// After the connection is lost and restored, calls go out unconfirmed on
/// a fresh channel, and a returned request is still caught there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_are_still_caught_after_a_reconnection() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("confirms_reconnect");
    let (server, _) = start_server(broker::connect().await, &topic, "s1").await;
    let options = format!("{}&{}", broker::TEST_OPTIONS, broker::FAST_RECONNECT);
    let transport = broker::connect_url(&through(&broker::url(), &[proxy.port()], &options)).await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(30));
    let calc = CalculatorClient::new(client.clone());
    let nobody = CalculatorClient::new(client.prepare().server("nobody"));
    let ctx = Context::new();
    assert_eq!(calc.add(&ctx, 1, 1).await.unwrap(), 2);
    assert!(matches!(nobody.add(&ctx, 1, 1).await, Err(Error::NoListener { .. })));

    proxy.cut().await;
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    while transport.driver_stats().reconnections == 0 || !transport.driver().is_connected() {
        assert!(Instant::now() < deadline, "no reconnection within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calc.add(&ctx, 2, 2).await.unwrap(), 4);
    fails_at_once_with_no_listener(&nobody, &ctx).await;
    let stats = transport.driver_stats();
    assert!(stats.reconnections >= 1, "{stats:?}");
    assert_eq!((stats.unconfirmed, stats.returned), (4, 2), "{stats:?}");
    server.stop();
    server.wait().await;
}

/// A cast from a client that opted out of confirms returns once it is
/// written: while the broker hears nothing (a stalled proxy), the broker
/// cannot have confirmed it, yet it returns; it arrives once the broker
/// hears again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_without_confirms_returns_once_written() {
    let proxy = Proxy::start(upstream_of(&broker::url())).await;
    let topic = unique_topic("unconfirmed_cast");
    let (server, calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = broker::connect_url(&through(&broker::url(), &[proxy.port()], broker::TEST_OPTIONS)).await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).confirm_casts(false);
    let calc = CalculatorClient::new(client);
    let ctx = Context::new();
    // The exchange is checked, and the channel open, before the silence.
    calc.cast().record(&ctx, "before".to_owned()).await.unwrap();
    calculator.observed.wait_for_records(1, Duration::from_secs(10)).await;

    proxy.stall();
    tokio::time::timeout(Duration::from_secs(5), calc.cast().record(&ctx, "stalled".to_owned()))
        .await
        .expect("the cast waited for the broker")
        .unwrap();
    assert_eq!(calculator.observed.records(), ["s1:before"]);
    proxy.restore();
    let records = calculator.observed.wait_for_records(2, Duration::from_secs(10)).await;
    assert_eq!(records, ["s1:before", "s1:stalled"]);
    assert_eq!(transport.driver_stats().unconfirmed, 2);
    server.stop();
    server.wait().await;
}

/// Waits until the driver counted `returned` returned messages.
async fn wait_for_returned(transport: &Transport, returned: u64) {
    eventually("the returns counted", Duration::from_secs(10), || {
        let stats = transport.driver_stats();
        if stats.returned >= returned { Ok(()) } else { Err(stats) }
    })
    .await;
}

/// A server on a fresh topic (so its exchange exists), the transport of a
/// client, and that client, pinned to server `nobody`: no queue is bound
/// for what it sends.
async fn to_nobody(prefix: &str) -> (Server, Transport, Client) {
    let topic = unique_topic(prefix);
    let (server, _) = start_server(broker::connect().await, &topic, "s1").await;
    let transport = broker::connect().await;
    let client = Client::new(transport.clone(), Target::topic(&topic)).server("nobody");
    (server, transport, client)
}

/// A cast nobody listens for: with confirms (the default) it fails with
/// `NoListener`; without, it returns, and the return is counted and
/// logged; at-least-once keeps its confirms whatever the client says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_cast_without_confirms_is_counted_and_logged() {
    let logs = Logs::global();
    let (server, transport, client) = to_nobody("unconfirmed_cast_nobody").await;
    let ctx = Context::new();

    let confirmed = CalculatorClient::new(client.clone());
    let result = confirmed.cast().record(&ctx, "confirmed".to_owned()).await;
    assert!(matches!(result, Err(Error::NoListener { .. })), "{result:?}");

    let unconfirmed = CalculatorClient::new(client.prepare().confirm_casts(false));
    unconfirmed.cast().record(&ctx, "unconfirmed".to_owned()).await.unwrap();
    wait_for_returned(&transport, 1).await;
    let stats = transport.driver_stats();
    assert_eq!((stats.unconfirmed, stats.returned), (1, 1), "{stats:?}");
    let warned = logs.lines_with(&["casts sent without confirms were returned", "casts=1", ".nobody"]);
    assert_eq!(warned.len(), 1, "{}", logs.text());
    // Returns are still drained once the channel's watcher has gone idle
    // (2 s of 5 ms ticks without a message, then a look every second:
    // about 3.5 s in a debug build), though this transport never listened
    // for replies.
    tokio::time::sleep(Duration::from_secs(5)).await;
    unconfirmed
        .cast()
        .record(&ctx, "after a while".to_owned())
        .await
        .unwrap();
    wait_for_returned(&transport, 2).await;

    let at_least_once = CalculatorClient::new(
        client
            .prepare()
            .confirm_casts(false)
            .delivery_mode(DeliveryMode::AtLeastOnce),
    );
    let result = at_least_once.cast().record(&ctx, "at least once".to_owned()).await;
    assert!(matches!(result, Err(Error::NoListener { .. })), "{result:?}");
    assert_eq!(transport.driver_stats().unconfirmed, 2);
    server.stop();
    server.wait().await;
}

/// The casts counted in warnings about returned casts to `topic`.
fn warned_casts(logs: &Logs, topic: &str) -> Vec<u64> {
    logs.lines_with(&["casts sent without confirms were returned", topic])
        .iter()
        .map(|line| {
            let count = line.split("casts=").nth(1).expect("a count");
            let digits: String = count.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("a number")
        })
        .collect()
}

/// A stream of returned casts is one warning at once and one with the rest
/// once the stream stops (at most one every 10 s), not one per collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_casts_are_warned_of_in_summaries() {
    let logs = Logs::global();
    let (server, transport, client) = to_nobody("unconfirmed_cast_stream").await;
    let topic = client.target().topic_name().to_owned();
    let nobody = CalculatorClient::new(client.confirm_casts(false));
    let ctx = Context::new();
    // Spread over many 5 ms collections.
    for i in 0..20 {
        nobody.cast().record(&ctx, format!("lost {i}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_returned(&transport, 20).await;
    let first = warned_casts(logs, &topic);
    assert_eq!(first.len(), 1, "{first:?}");
    // The rest, once the stream has been quiet for a while.
    eventually("a summary", Duration::from_secs(10), || {
        let warned = warned_casts(logs, &topic);
        if warned.len() >= 2 { Ok(()) } else { Err(warned) }
    })
    .await;
    let all = warned_casts(logs, &topic);
    assert_eq!((all.len(), all.iter().sum::<u64>()), (2, 20), "{all:?}");
    server.stop();
    server.wait().await;
}

/// A transport whose replies do not wait for confirms (at-most-once replies).
async fn replying_without_confirms() -> Transport {
    broker::connect_url(&broker::url_with(&format!(
        "{}&confirm_replies=false",
        broker::TEST_OPTIONS
    )))
    .await
}

/// With `confirm_replies=false` a server's replies go out unconfirmed, and
/// the calls are answered as before; by default they wait for confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_go_out_unconfirmed_where_the_transport_opts_out() {
    let server_transport = replying_without_confirms().await;
    exercise(server_transport.clone(), broker::connect().await).await;
    let stats = server_transport.driver_stats();
    // The ten answers; nothing else this transport sent.
    assert_eq!((stats.unconfirmed, stats.returned), (10, 0), "{stats:?}");

    let server_transport = broker::connect().await;
    exercise(server_transport.clone(), broker::connect().await).await;
    let stats = server_transport.driver_stats();
    assert_eq!((stats.unconfirmed, stats.returned), (0, 0), "{stats:?}");
}

/// A reply without confirms whose queue is gone (its caller's transport
/// closed while the method ran) is returned: counted and logged as a lost
/// reply, not published again; and the queue is remembered as gone, so a
/// later reply to it is dropped without being published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_reply_without_confirms_is_counted_and_logged() {
    let logs = Logs::global();
    let topic = unique_topic("unconfirmed_reply_gone");
    let server_transport = replying_without_confirms().await;
    let (server, _) = start_server(server_transport.clone(), &topic, "s1").await;
    let client_transport = broker::connect().await;
    let client = Client::new(client_transport.clone(), Target::topic(&topic)).timeout(Duration::from_secs(30));
    let calc = CalculatorClient::new(client);
    // Long enough to close the caller's transport while both run, on a
    // busy machine too; the second ends seconds after the first's reply
    // came back returned. The calls fail as soon as the transport closes.
    let calls = [3_000, 6_000].map(|millis| {
        let calc = calc.clone();
        tokio::spawn(async move { calc.sleep(&Context::new(), millis).await })
    });
    eventually("both calls running", Duration::from_secs(10), || {
        let stats = server.stats();
        if stats.in_flight == 2 { Ok(()) } else { Err(stats) }
    })
    .await;
    client_transport.close().await.unwrap();
    wait_for_returned(&server_transport, 1).await;
    let warned = logs.lines_with(&["replies sent without confirms", "replies=1", "reply_"]);
    assert_eq!(warned.len(), 1, "{}", logs.text());
    eventually("both calls answered", Duration::from_secs(10), || {
        let stats = server.stats();
        if stats.in_flight == 0 { Ok(()) } else { Err(stats) }
    })
    .await;
    // The second reply was dropped: neither published nor returned.
    let stats = server_transport.driver_stats();
    assert_eq!((stats.unconfirmed, stats.returned), (1, 1), "{stats:?}");
    for call in calls {
        assert!(call.await.unwrap().is_err());
    }
    server.stop();
    server.wait().await;
}
