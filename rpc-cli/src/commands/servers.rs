//! `rpc servers`: who listens on a topic, from RabbitMQ's management API.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use clap::Args;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rpc_config::TransportUrl;
use rpc_core::Value;
use serde_json::json;

use crate::connect::Global;
use crate::exit::Exit;

/// `rpc servers`.
#[derive(Debug, Args)]
pub(crate) struct ServersArgs {
    /// The topic.
    topic: String,
    /// The management API, e.g. `http://user:pass@host:15672` (default: the
    /// transport's first host on port 15672, with its credentials).
    #[arg(long, value_name = "URL")]
    management_url: Option<String>,
    /// Prints JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for each answer of the management API.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
}

/// One of the topic's queues.
struct Queue {
    name: String,
    kind: &'static str,
    server: Option<String>,
    messages: u64,
    consumers: Vec<String>,
}

/// Lists the topic's queues (shared, per server, fanout) and their consumers.
pub(crate) async fn servers(global: &Global, args: ServersArgs) -> Result<(), Exit> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| Exit::Usage(format!("--timeout must be positive, not {}", args.timeout)))?;
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .new_agent();
    let transport_url = global.rpc_url(global.config()?);
    let parsed = TransportUrl::parse(&transport_url).map_err(|error| Exit::Usage(format!("{error}")))?;
    // oslo's `rabbit://host/` (empty) and AMQP's `%2f` both mean `/`.
    let vhost = parsed
        .virtual_host()
        .filter(|vhost| !vhost.is_empty())
        .unwrap_or("/")
        .to_owned();
    let base = match &args.management_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = parsed
                .hosts()
                .first()
                .ok_or_else(|| Exit::Usage("the transport URL names no host".to_owned()))?;
            let credentials = match (host.username.as_deref(), host.password()) {
                (Some(user), password) => format!(
                    "{}:{}@",
                    utf8_percent_encode(user, NON_ALPHANUMERIC),
                    utf8_percent_encode(password.unwrap_or(""), NON_ALPHANUMERIC)
                ),
                (None, _) => "guest:guest@".to_owned(),
            };
            let hostname = host.hostname.as_deref().unwrap_or("localhost");
            let hostname = if hostname.contains(':') {
                format!("[{hostname}]")
            } else {
                hostname.to_owned()
            };
            format!("http://{credentials}{hostname}:15672")
        }
    };
    let topic = args.topic.clone();
    let queues = tokio::task::spawn_blocking(move || queues(&agent, &base, &vhost, &topic))
        .await
        .map_err(|error| Exit::Failed(format!("the management query failed: {error}")))??;
    if args.json {
        let queues: Vec<Value> = queues
            .iter()
            .map(|queue| {
                json!({
                    "queue": queue.name,
                    "kind": queue.kind,
                    "server": queue.server,
                    "messages": queue.messages,
                    "consumers": queue.consumers,
                })
            })
            .collect();
        println!("{}", Value::Array(queues));
        return Ok(());
    }
    if queues.is_empty() {
        println!("no queue for topic `{}`: no server ever listened on it", args.topic);
        return Ok(());
    }
    println!(
        "{:<8} {:<20} {:>9} {:>9}  queue / consumers",
        "kind", "server", "messages", "consumers"
    );
    for queue in &queues {
        println!(
            "{:<8} {:<20} {:>9} {:>9}  {}",
            queue.kind,
            queue.server.as_deref().unwrap_or("-"),
            queue.messages,
            queue.consumers.len(),
            queue.name
        );
        for consumer in &queue.consumers {
            println!("{:<51}  - {consumer}", "");
        }
    }
    Ok(())
}

/// The management API's JSON at `path`.
fn get(agent: &ureq::Agent, base: &str, path: &str) -> Result<Value, Exit> {
    let url = format!("{base}{path}");
    let shown = redact(&url);
    let timed_out = || Exit::Timeout(format!("RabbitMQ's management API at {shown} did not answer in time"));
    let mut response = agent.get(&url).call().map_err(|error| match error {
        ureq::Error::StatusCode(401) => Exit::Config(format!("the management API at {shown} refused the credentials")),
        ureq::Error::StatusCode(404) => Exit::Failed(format!("{shown}: not found")),
        ureq::Error::Timeout(_) => timed_out(),
        other => Exit::Unreachable(format!(
            "cannot reach RabbitMQ's management API at {shown}: {other} \
             (is the plugin enabled? `rabbitmq-plugins enable rabbitmq_management`; or give --management-url)"
        )),
    })?;
    let body = response.body_mut().read_to_string().map_err(|error| match error {
        ureq::Error::Timeout(_) => timed_out(),
        error => Exit::Unreachable(format!("reading {shown}: {error}")),
    })?;
    serde_json::from_str(&body).map_err(|error| Exit::Failed(format!("{shown} did not answer JSON: {error}")))
}

/// `url` without its credentials: everything before the last `@` (after
/// the scheme, when there is one), so a password holding `/` or `@` stays
/// hidden too.
fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |scheme| scheme + 3);
    match url.rfind('@') {
        Some(at) if at >= start => format!("{}***{}", &url[..start], &url[at..]),
        _ => url.to_owned(),
    }
}

fn queues(agent: &ureq::Agent, base: &str, vhost: &str, topic: &str) -> Result<Vec<Queue>, Exit> {
    let vhost = utf8_percent_encode(vhost, NON_ALPHANUMERIC).to_string();
    let listed = get(agent, base, &format!("/api/queues/{vhost}?columns=name,messages"))?;
    let server_prefix = format!("{topic}.");
    let fanout_prefix = format!("{topic}_fanout_");
    let mut queues = Vec::new();
    for queue in listed.as_array().into_iter().flatten() {
        let Some(name) = queue["name"].as_str() else { continue };
        let (kind, server) = if name == topic {
            ("shared", None)
        } else if let Some(server) = name.strip_prefix(&server_prefix) {
            ("server", Some(server.to_owned()))
        } else if name.starts_with(&fanout_prefix) {
            ("fanout", None)
        } else {
            continue;
        };
        let encoded = utf8_percent_encode(name, NON_ALPHANUMERIC);
        let details = get(agent, base, &format!("/api/queues/{vhost}/{encoded}"))?;
        let consumers = details["consumer_details"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|consumer| {
                let channel = &consumer["channel_details"];
                format!(
                    "{} ({})",
                    channel["connection_name"].as_str().unwrap_or("?"),
                    channel["peer_host"].as_str().unwrap_or("?")
                )
            })
            .collect();
        queues.push(Queue {
            name: name.to_owned(),
            kind,
            server,
            messages: details["messages"].as_u64().unwrap_or(0),
            consumers,
        });
    }
    queues.sort_by(|a, b| (a.kind, &a.server, &a.name).cmp(&(b.kind, &b.server, &b.name)));
    Ok(queues)
}
