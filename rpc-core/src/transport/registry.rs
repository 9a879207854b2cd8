//! Transport URLs: `memory://` built in, other schemes registered by their crates.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, RwLock};

use super::memory::Broker;
use crate::{Codec, Error, Transport};

/// What a [`Connector`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<Transport, Error>> + Send>>;

/// Opens a transport from a URL; registered per scheme with [`register`].
pub type Connector = fn(url: String) -> ConnectFuture;

static CONNECTORS: LazyLock<RwLock<HashMap<String, Connector>>> = LazyLock::new(Default::default);

/// Makes [`transport_from_url`] open URLs of `scheme` with `connector`.
///
/// Transport crates call this from their own `register()` function (for
/// AMQP: `rpc_amqp::register()`), once at start-up. Registering a scheme
/// again replaces the previous connector.
pub fn register(scheme: &str, connector: Connector) {
    CONNECTORS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(scheme.to_ascii_lowercase(), connector);
}

/// Opens a transport from a URL.
///
/// - `memory://` is the in-process transport, built in: every transport
///   opened with the same URL in one process shares one in-memory broker;
///   `memory://name` names a separate broker. Query options: `codec`
///   (`msgpack`), `control_exchange`.
/// - other schemes (`amqp://`, `amqps://`, `rabbit://`) are opened by the
///   transport registered for them; see [`register`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_core::Error> {
/// let transport = rpc_core::transport_from_url("memory://?control_exchange=nova").await?;
/// assert_eq!(transport.control_exchange(), "nova");
/// # Ok(())
/// # }
/// ```
pub async fn transport_from_url(url: &str) -> Result<Transport, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: redact_url(url),
        reason,
    };
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(invalid("expected `scheme://...`".to_owned()));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "memory" {
        return open_memory(url).map_err(invalid);
    }
    let connector = CONNECTORS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&scheme)
        .copied();
    match connector {
        Some(connect) => connect(url.to_owned()).await,
        None => Err(invalid(format!(
            "no transport is registered for `{scheme}://`; for RabbitMQ add the `rpc-amqp` crate and call `rpc_amqp::register()` first"
        ))),
    }
}

fn open_memory(url: &str) -> Result<Transport, String> {
    let rest = &url["memory://".len()..];
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    let name = name.trim_end_matches('/');
    let mut builder = Transport::builder(Broker::named(name).driver());
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "codec" => {
                let codec = Codec::from_name(value).ok_or_else(|| format!("unknown codec `{value}`"))?;
                builder = builder.codec(codec);
            }
            "control_exchange" if !value.is_empty() => builder = builder.control_exchange(value),
            _ => return Err(format!("unknown option `{key}` for `memory://`")),
        }
    }
    Ok(builder.build())
}

/// `url` with the password of every `user:password@` replaced by `***`, for
/// logs and error messages.
///
/// It errs on the side of hiding: everything up to the last `@` counts as
/// credentials, so a password holding unencoded `@`, `/` or `,` stays hidden
/// too.
///
/// ```
/// assert_eq!(
///     rpc_core::transport::redact_url("amqp://guest:s3cret@h1:5672,u:p@h2/vh"),
///     "amqp://guest:***@h1:5672,u:***@h2/vh"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // No host list (`rabbit:/user:secret@host`): what follows the
        // scheme up to the last `@` may all be credentials.
        return match (url.split_once(':'), url.rfind('@')) {
            (Some((scheme, _)), Some(last_at)) if last_at > scheme.len() => {
                format!("{scheme}:***{}", &url[last_at..])
            }
            _ => url.to_owned(),
        };
    };
    let Some(last_at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let authority_end = rest[last_at..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |at| last_at + at);
    let (authority, tail) = rest.split_at(authority_end);
    format!("{scheme}://{}{tail}", redact_authority(authority))
}

/// Redacts `user:password@host,user:password@host...`.
fn redact_authority(authority: &str) -> String {
    let parts: Vec<&str> = authority.split('@').collect();
    let Some((host, credentials)) = parts.split_last() else {
        return authority.to_owned();
    };
    let mut out = String::with_capacity(authority.len());
    for (i, part) in credentials.iter().enumerate() {
        let userinfo = if i == 0 {
            *part
        } else {
            // `previous-host,user:password`, or a piece of a password that held an `@`.
            match part.split_once(',') {
                Some((previous_host, userinfo)) => {
                    out.push('@');
                    out.push_str(previous_host);
                    out.push(',');
                    userinfo
                }
                None => continue,
            }
        };
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
    }
    out.push('@');
    out.push_str(host);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        for (url, shown) in [
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            (
                "rabbit://u:p@h1:5672,v:q@h2:5672/vh?x=1",
                "rabbit://u:***@h1:5672,v:***@h2:5672/vh?x=1",
            ),
            ("amqp://h1,h2/", "amqp://h1,h2/"),
            ("amqp://user@h1", "amqp://user@h1"),
            ("amqps://u:p@ss@h", "amqps://u:***@h"),
            ("amqp://u:p/x,y@h/vh", "amqp://u:***@h/vh"),
            ("amqp://u:p@h1,v:q,z@h2", "amqp://u:***@h1,v:***@h2"),
            ("memory://", "memory://"),
            ("not a url", "not a url"),
            // No `//`: everything after the scheme up to the last `@`.
            ("rabbit:/u:secret@h//", "rabbit:***@h//"),
            ("rabbit:u:secret@h", "rabbit:***@h"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn unknown_scheme_is_a_clear_error() {
        let error = transport_from_url("nats://u:secret@h").await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("no transport is registered for `nats://`"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(transport_from_url("nope").await.is_err());
    }

    #[tokio::test]
    async fn memory_options() {
        let transport = transport_from_url("memory://options-test?codec=msgpack&control_exchange=nova")
            .await
            .unwrap();
        assert_eq!(transport.control_exchange(), "nova");
        let error = transport_from_url("memory://?codec=xml").await.unwrap_err();
        assert!(error.to_string().contains("unknown codec `xml`"), "{error}");
        let error = transport_from_url("memory://?bogus=1").await.unwrap_err();
        assert!(error.to_string().contains("unknown option `bogus`"), "{error}");
    }
}
