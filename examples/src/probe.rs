//! The HTTP side of a server in production: Prometheus metrics on
//! `/metrics`, readiness on `/healthz`, liveness on `/livez`.
//!
//! A deliberately small HTTP/1.1 responder (GET only, one request per
//! connection): what a probe and a scraper need, without pulling an HTTP
//! stack into the examples. A service with an HTTP framework already
//! (axum, hyper) serves the same three routes from it.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rpc_core::{Health, Server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read from a probe.
const MAX_HEAD: usize = 8 * 1024;

/// How long a connection has to send its request and take the answer: one
/// that sends nothing (a slow or idle client) is closed then, instead of
/// holding a task and a descriptor for ever.
pub const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How many probe connections are answered at once; the next ones wait to
/// be accepted.
const MOST_CONNECTIONS: usize = 64;

/// Installs a Prometheus recorder for the `metrics` facade, with latency
/// buckets (in seconds) for the duration histograms. Inside a tokio
/// runtime, it also drains the histograms every 5 s (the recorder's
/// upkeep): only a scrape drains them otherwise, and while nothing scrapes,
/// every request's sample is kept.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    const BUCKETS: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_owned()), BUCKETS)
        .map_err(|error| error.to_string())?
        .install_recorder()
        .map_err(|error| error.to_string())?;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let upkept = handle.clone();
        runtime.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                upkept.run_upkeep();
            }
        });
    }
    Ok(handle)
}

/// The health as `/healthz` shows it.
pub fn health_json(health: &Health) -> serde_json::Value {
    json!({
        "ready": health.is_ready(),
        "live": health.is_live(),
        "connected": health.connected,
        "queues": health.queues.iter().map(|queue| json!({
            "name": queue.name,
            "consuming": queue.consuming,
        })).collect::<Vec<_>>(),
        "last_delivery": health.last_delivery
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs_f64()),
        "in_flight": health.in_flight,
    })
}

/// Serves the routes for `server` on `listener` until the task is dropped.
///
/// At most 64 connections are answered at once, each within
/// [`CONNECTION_TIMEOUT`]; an accept that fails (out of file descriptors)
/// is tried again 100 ms later, not at once in a loop.
pub async fn serve(listener: TcpListener, server: std::sync::Arc<Server>, metrics: PrometheusHandle) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MOST_CONNECTIONS));
    loop {
        let Ok(slot) = std::sync::Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a probe connection; trying again in 100 ms");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (server, metrics) = (std::sync::Arc::clone(&server), metrics.clone());
        tokio::spawn(async move {
            let answered = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &server, &metrics)).await;
            match answered {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "a probe connection failed"),
                Err(_) => tracing::debug!(%peer, "a probe connection sent no request in time; closed"),
            }
            drop(slot);
        });
    }
}

async fn answer(mut stream: TcpStream, server: &Server, metrics: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (request_line.next().unwrap_or(""), request_line.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") => {
            let health = server.health();
            let status = if health.is_ready() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", health_json(&health).to_string())
        }
        ("GET", "/livez") => {
            let health = server.health();
            let status = if health.is_live() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", health_json(&health).to_string())
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz or /livez\n".to_owned(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Binds the probe's address (`127.0.0.1:0` picks a free port).
pub async fn bind(address: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
