//! `rpc servers`: who listens on a topic, from RabbitMQ's management API.

use std::time::Duration;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use clap::Args;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rpc_config::TransportUrl;
use rpc_core::Value;
use serde_json::json;

use crate::connect::Global;
use crate::exit::Exit;
use crate::out::outln;

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
    let management = Management::locate(args.management_url.as_deref(), &parsed)?;
    let topic = args.topic.clone();
    let queues = tokio::task::spawn_blocking(move || queues(&agent, &management, &vhost, &topic))
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
        outln!("{}", Value::Array(queues));
        return Ok(());
    }
    if queues.is_empty() {
        outln!("no queue for topic `{}`: no server ever listened on it", args.topic);
        return Ok(());
    }
    outln!(
        "{:<8} {:<20} {:>9} {:>9}  queue / consumers",
        "kind",
        "server",
        "messages",
        "consumers"
    );
    for queue in &queues {
        outln!(
            "{:<8} {:<20} {:>9} {:>9}  {}",
            queue.kind,
            queue.server.as_deref().unwrap_or("-"),
            queue.messages,
            queue.consumers.len(),
            queue.name
        );
        for consumer in &queue.consumers {
            outln!("{:<51}  - {consumer}", "");
        }
    }
    Ok(())
}

/// RabbitMQ's management API: where it answers, and the credentials sent to
/// it, in an `Authorization` header of their own. (Credentials left in the
/// URL went out as written: ureq does not percent-decode them, so a user
/// name or password holding any character encoded in the URL, `-` and `/`
/// included, was refused until 2026-12-05.)
struct Management {
    /// The URL without its credentials.
    base: String,
    /// `Basic <user:password in base64>`.
    authorization: String,
}

impl Management {
    /// `--management-url` when given, with its own credentials, or else
    /// the transport's; without it, the transport's first host on port
    /// 15672. Credentials are `guest:guest` when neither URL has any.
    fn locate(management_url: Option<&str>, transport: &TransportUrl) -> Result<Management, Exit> {
        let host = transport.hosts().first();
        let transport_credentials = host.and_then(|host| {
            let user = host.username.clone()?;
            Some((user, host.password().unwrap_or_default().to_owned()))
        });
        let (base, credentials) = match management_url {
            Some(url) => {
                if !url
                    .get(..7)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
                {
                    return Err(Exit::Usage(
                        "--management-url: expected an http:// URL (this rpc speaks no TLS to the management API: \
                         reach it over http, or through a tunnel)"
                            .to_owned(),
                    ));
                }
                let (base, credentials) = split_credentials(url.trim_end_matches('/'))?;
                (base, credentials.or(transport_credentials))
            }
            None => {
                let host = host.ok_or_else(|| Exit::Usage("the transport URL names no host".to_owned()))?;
                let hostname = host.hostname.as_deref().unwrap_or("localhost");
                let hostname = if hostname.contains(':') {
                    format!("[{hostname}]")
                } else {
                    hostname.to_owned()
                };
                (format!("http://{hostname}:15672"), transport_credentials)
            }
        };
        let (user, password) = credentials.unwrap_or_else(|| ("guest".to_owned(), "guest".to_owned()));
        let authorization = format!("Basic {}", BASE64_STANDARD.encode(format!("{user}:{password}")));
        Ok(Management { base, authorization })
    }

    /// The JSON at `path`.
    fn get(&self, agent: &ureq::Agent, path: &str) -> Result<Value, Exit> {
        let shown = format!("{}{path}", self.base);
        let timed_out = || Exit::Timeout(format!("RabbitMQ's management API at {shown} did not answer in time"));
        let mut response = agent
            .get(&shown)
            .header("Authorization", &self.authorization)
            .call()
            .map_err(|error| match error {
                ureq::Error::StatusCode(401) => {
                    Exit::Refused(format!("the management API at {shown} refused the credentials"))
                }
                ureq::Error::StatusCode(403) => Exit::Refused(format!(
                    "the management API at {shown} refused the user: it needs the `management` or `monitoring` tag"
                )),
                ureq::Error::StatusCode(404) => Exit::Failed(format!("{shown}: not found")),
                ureq::Error::StatusCode(status) => {
                    Exit::Failed(format!("the management API at {shown} answered HTTP {status}"))
                }
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
}

/// `url` without its credentials, and the credentials, percent-decoded:
/// everything before the last `@` after the scheme, so that a password
/// holding an unencoded `/` or `@` is taken whole, and never shown.
fn split_credentials(url: &str) -> Result<(String, Option<(String, String)>), Exit> {
    let start = url.find("://").map_or(0, |scheme| scheme + 3);
    let Some(at) = url.rfind('@').filter(|at| *at >= start) else {
        return Ok((url.to_owned(), None));
    };
    let userinfo = &url[start..at];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |text: &str| {
        percent_decode_str(text)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| Exit::Usage("--management-url: its credentials are not UTF-8 once decoded".to_owned()))
    };
    let base = format!("{}{}", &url[..start], &url[at + 1..]);
    Ok((base, Some((decode(user)?, decode(password)?))))
}

/// The topic's queues: the vhost's queues whose names start with the
/// topic, asked of the broker a page at a time (a large vhost's whole list
/// could take longer than `--timeout`), then each one's consumers.
fn queues(agent: &ureq::Agent, management: &Management, vhost: &str, topic: &str) -> Result<Vec<Queue>, Exit> {
    let vhost = utf8_percent_encode(vhost, NON_ALPHANUMERIC).to_string();
    let pattern = format!("^{}($|\\.|_fanout)", regex_escaped(topic));
    let pattern = utf8_percent_encode(&pattern, NON_ALPHANUMERIC).to_string();
    let server_prefix = format!("{topic}.");
    let fanout_prefix = format!("{topic}_fanout_");
    // oslo's stream fanout queue (`rabbit_stream_fanout`) has no suffix.
    let stream_fanout = format!("{topic}_fanout");
    let mut listed = Vec::new();
    for page in 1.. {
        let path =
            format!("/api/queues/{vhost}?page={page}&page_size={PAGE_SIZE}&name={pattern}&use_regex=true&columns=name");
        let answer = management.get(agent, &path)?;
        listed.extend(answer["items"].as_array().into_iter().flatten().cloned());
        if answer["page_count"].as_u64().is_none_or(|count| page >= count) {
            break;
        }
    }
    let mut queues = Vec::new();
    for queue in &listed {
        let Some(name) = queue["name"].as_str() else { continue };
        let (kind, server) = if name == topic {
            ("shared", None)
        } else if let Some(server) = name.strip_prefix(&server_prefix) {
            ("server", Some(server.to_owned()))
        } else if name.starts_with(&fanout_prefix) || name == stream_fanout {
            ("fanout", None)
        } else {
            continue;
        };
        let encoded = utf8_percent_encode(name, NON_ALPHANUMERIC);
        let details = management.get(agent, &format!("/api/queues/{vhost}/{encoded}"))?;
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

/// Queues asked for at once: the management API's largest page.
const PAGE_SIZE: u32 = 500;

/// `text` matched literally in the management API's regular expressions
/// (Erlang's `re`, as PCRE).
fn regex_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url_and_decoded() {
        let (base, credentials) = split_credentials("http://ops-1:p%40ss%2Fw%3Ard@rabbit:15672").unwrap();
        assert_eq!(base, "http://rabbit:15672");
        assert_eq!(credentials, Some(("ops-1".to_owned(), "p@ss/w:rd".to_owned())));
        // An unencoded `/` or `@` in the password: everything before the last `@`.
        let (base, credentials) = split_credentials("http://admin:Qk/W@j@rabbit").unwrap();
        assert_eq!(base, "http://rabbit");
        assert_eq!(credentials, Some(("admin".to_owned(), "Qk/W@j".to_owned())));
        assert_eq!(
            split_credentials("http://rabbit:15672").unwrap(),
            ("http://rabbit:15672".to_owned(), None)
        );
    }

    #[test]
    fn the_management_url_s_credentials_come_first_then_the_transport_s() {
        let transport = TransportUrl::parse("rabbit://nova:s%2Fcret@ctl-1:5672/").unwrap();
        let basic = |user_password: &str| format!("Basic {}", BASE64_STANDARD.encode(user_password));
        let derived = Management::locate(None, &transport).unwrap();
        assert_eq!(derived.base, "http://ctl-1:15672");
        assert_eq!(derived.authorization, basic("nova:s/cret"));
        let given = Management::locate(Some("http://admin:x%2By@mgmt:8080/"), &transport).unwrap();
        assert_eq!(
            (given.base.as_str(), given.authorization),
            ("http://mgmt:8080", basic("admin:x+y"))
        );
        let bare = Management::locate(Some("http://mgmt:8080"), &transport).unwrap();
        assert_eq!(bare.authorization, basic("nova:s/cret"));
        let anonymous = TransportUrl::parse("rabbit://ctl-1:5672/").unwrap();
        assert_eq!(
            Management::locate(None, &anonymous).unwrap().authorization,
            basic("guest:guest")
        );
    }

    #[test]
    fn topics_are_matched_literally() {
        assert_eq!(regex_escaped("q-agent.notifier"), "q-agent\\.notifier");
        assert_eq!(regex_escaped("a(b)*"), "a\\(b\\)\\*");
    }
}
