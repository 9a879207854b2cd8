//! With the `opentelemetry` feature and a `tracing-opentelemetry` layer, the
//! spans of a call on both sides of the broker are one trace: the caller's
//! span, its `rpc.call`, and the server's `rpc.request`, parent to child.
//! Client and server use separate connections to RabbitMQ, so the trace
//! crosses only in the message's `traceparent` header.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rpc_core::{Client, Context, Target};
use rpc_tests::api::CalculatorClient;
use rpc_tests::broker;
use rpc_tests::conformance::{start_server, unique_topic};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_the_broker_is_one_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("rpc-tests")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let topic = unique_topic("otel");
    let (server, _calculator) = start_server(broker::connect().await, &topic, "s1").await;
    let client = CalculatorClient::new(Client::new(broker::connect().await, Target::topic(&topic)));
    let checkout = tracing::info_span!("checkout");
    let sum = client.add(&Context::new(), 1, 2).instrument(checkout).await.unwrap();
    assert_eq!(sum, 3);
    server.stop();
    server.wait().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let find = |name: &str| -> &SpanData {
        spans.iter().find(|span| span.name == name).unwrap_or_else(|| {
            panic!(
                "no `{name}` span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let (checkout, call, request) = (find("checkout"), find("rpc.call"), find("rpc.request"));
    let trace_id = checkout.span_context.trace_id();
    assert_eq!(call.span_context.trace_id(), trace_id, "rpc.call in the caller's trace");
    assert_eq!(
        request.span_context.trace_id(),
        trace_id,
        "rpc.request in the caller's trace"
    );
    assert_eq!(call.parent_span_id, checkout.span_context.span_id());
    assert_eq!(request.parent_span_id, call.span_context.span_id());
}
