//! Where a request goes, or where a server listens.

use std::fmt;

use crate::Version;

/// The address of a request, or of a listening server.
///
/// As in oslo.messaging, a target names an exchange (`None` means the
/// transport's control exchange, `openstack` unless configured), a topic, and
/// optionally one server on that topic; requests also carry the namespace and
/// version of the API they call, and casts may go to every server (`fanout`).
///
/// - a **server** listens on a target with a topic *and* a server name;
/// - a **client** sends to a topic: one of the servers on it receives the
///   request; with a server name, that server receives it; with `fanout`
///   (casts only), every server on the topic receives it.
///
/// ```
/// use rpc_core::{Target, Version};
///
/// let listen = Target::server("compute", "host-1");
/// let send = Target::topic("compute")
///     .with_namespace("control")
///     .with_version(Version::new(2, 0));
/// assert_eq!(listen.server_name(), Some("host-1"));
/// assert_eq!(send.namespace(), Some("control"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Target {
    exchange: Option<String>,
    topic: String,
    server: Option<String>,
    namespace: Option<String>,
    version: Option<Version>,
    fanout: bool,
}

impl Target {
    /// A target for any server listening on `topic`.
    pub fn topic(topic: impl Into<String>) -> Target {
        Target {
            topic: topic.into(),
            ..Target::default()
        }
    }

    /// A target for the server named `server` on `topic`: what a server listens on.
    pub fn server(topic: impl Into<String>, server: impl Into<String>) -> Target {
        Target::topic(topic).with_server(server)
    }

    /// Sets the exchange, overriding the transport's control exchange.
    pub fn with_exchange(mut self, exchange: impl Into<String>) -> Target {
        self.exchange = Some(exchange.into());
        self
    }

    /// Sets the topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Target {
        self.topic = topic.into();
        self
    }

    /// Sets the server name.
    pub fn with_server(mut self, server: impl Into<String>) -> Target {
        self.server = Some(server.into());
        self
    }

    /// Sets the API namespace requests are dispatched in.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Target {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the API version requests ask for.
    pub fn with_version(mut self, version: Version) -> Target {
        self.version = Some(version);
        self
    }

    /// Makes casts go to every server on the topic.
    pub fn with_fanout(mut self, fanout: bool) -> Target {
        self.fanout = fanout;
        self
    }

    /// The exchange, if set; `None` means the transport's control exchange.
    pub fn exchange(&self) -> Option<&str> {
        self.exchange.as_deref()
    }

    /// The topic.
    pub fn topic_name(&self) -> &str {
        &self.topic
    }

    /// The server name, if set.
    pub fn server_name(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// The namespace, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The version, if set.
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// Whether casts go to every server on the topic.
    pub fn fanout(&self) -> bool {
        self.fanout
    }

    pub(crate) fn set_exchange(&mut self, exchange: Option<String>) {
        self.exchange = exchange;
    }

    pub(crate) fn set_server(&mut self, server: Option<String>) {
        self.server = server;
    }

    pub(crate) fn set_namespace(&mut self, namespace: Option<String>) {
        self.namespace = namespace;
    }

    pub(crate) fn set_version(&mut self, version: Option<Version>) {
        self.version = version;
    }
}

/// `exchange/topic.server (namespace ns, version v, fanout)`, for messages and logs.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(exchange) = &self.exchange {
            write!(f, "{exchange}/")?;
        }
        write!(f, "topic `{}`", self.topic)?;
        if let Some(server) = &self.server {
            write!(f, ", server `{server}`")?;
        }
        if let Some(namespace) = &self.namespace {
            write!(f, ", namespace `{namespace}`")?;
        }
        if let Some(version) = &self.version {
            write!(f, ", version {version}")?;
        }
        if self.fanout {
            f.write_str(", fanout")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_display() {
        let target = Target::server("test", "server1")
            .with_exchange("nova")
            .with_namespace("control")
            .with_version(Version::new(2, 0));
        assert_eq!(target.exchange(), Some("nova"));
        assert_eq!(target.topic_name(), "test");
        assert_eq!(
            target.to_string(),
            "nova/topic `test`, server `server1`, namespace `control`, version 2.0"
        );
        assert_eq!(Target::topic("t").with_fanout(true).to_string(), "topic `t`, fanout");
    }
}
