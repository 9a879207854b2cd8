//! From a configuration to the framework's objects: the transports, and
//! servers, clients and notifiers set as the files say.

use std::time::Duration;

use rpc_core::notify::{Notifier, NotifyDriver};
use rpc_core::transport::Retry;
use rpc_core::{Client, Executor, Server, ServerBuilder, Target, Transport};

use crate::{Config, Scheme, TransportUrl};

/// oslo.messaging's transport when `transport_url` is unset.
pub const DEFAULT_TRANSPORT_URL: &str = "rabbit://guest:guest@localhost:5672/";

impl Config {
    /// The RPC transport's URL, with the `[oslo_messaging_rabbit]` and
    /// `control_exchange` options set in the files in its query (the URL's
    /// own options win); oslo's default when `transport_url` is unset. It
    /// holds the password: [`TransportUrl`]'s `Display` masks it for logs.
    pub fn rpc_url(&self) -> String {
        self.full_url(self.options().default.transport_url.as_ref())
    }

    /// The notifications' transport URL: `[oslo_messaging_notifications]
    /// transport_url`, else the RPC one, with the same options.
    pub fn notification_url(&self) -> String {
        self.full_url(self.options().notification_transport_url())
    }

    fn full_url(&self, url: Option<&TransportUrl>) -> String {
        let mut query = self.options().transport_query();
        if url.is_some_and(|url| url.scheme() == Scheme::Memory) {
            // The broker's options mean nothing in memory: a file written
            // for RabbitMQ opens `memory://` by changing only its URL.
            query.retain(|(name, _)| *name == "control_exchange");
        } else {
            // A service configured as oslo's are speaks with them: oslo's
            // JSON (MessagePack, the transport's own default, is what a
            // Python server cannot read: its calls timed out until
            // 2026-12-05), and oslo's heartbeat (60 s, where the transport's
            // own is 10 s), unless the files or the URL say otherwise.
            query.push(("codec", "oslo".to_owned()));
            if !query.iter().any(|(name, _)| *name == "heartbeat_timeout_threshold") {
                let heartbeat = self.options().rabbit.heartbeat_timeout_threshold;
                query.push(("heartbeat_timeout_threshold", heartbeat.to_string()));
            }
        }
        match url {
            Some(url) => url.full_url_with(&query),
            None => match TransportUrl::parse(DEFAULT_TRANSPORT_URL) {
                Ok(url) => url.full_url_with(&query),
                Err(_) => DEFAULT_TRANSPORT_URL.to_owned(),
            },
        }
    }

    /// Opens the RPC transport (the program registers the AMQP transport
    /// first: `rpc_amqp::register()`).
    pub async fn transport(&self) -> Result<Transport, rpc_core::Error> {
        rpc_core::transport_from_url(&self.rpc_url()).await
    }

    /// Opens the notifications' transport.
    pub async fn notification_transport(&self) -> Result<Transport, rpc_core::Error> {
        rpc_core::transport_from_url(&self.notification_url()).await
    }

    /// `rpc_response_timeout`, as a duration.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.options().default.rpc_response_timeout))
    }

    /// The executor `executor_thread_pool_size` asks for.
    pub fn executor(&self) -> Executor {
        let size = self.options().default.executor_thread_pool_size;
        Executor::Concurrent(
            usize::try_from(size)
                .unwrap_or(usize::MAX)
                .clamp(1, usize::from(u16::MAX)),
        )
    }

    /// A server on `target`, with the executor and oslo's ping as the files say.
    pub fn server(&self, transport: Transport, target: Target) -> ServerBuilder {
        Server::builder(transport, target)
            .executor(self.executor())
            .rpc_ping(self.options().default.rpc_ping_enabled)
    }

    /// A client of `target`, with `rpc_response_timeout`.
    pub fn client(&self, transport: Transport, target: Target) -> Client {
        Client::new(transport, target).timeout(self.call_timeout())
    }

    /// A notifier as `[oslo_messaging_notifications]` says: every driver
    /// listed that this framework knows, in turn (none: nothing is sent, as
    /// oslo does then; an unknown one, such as `routing`, is skipped with a
    /// warning), its topics and retry.
    pub fn notifier(&self, transport: Transport, publisher_id: impl Into<String>) -> Notifier {
        let notifications = &self.options().notifications;
        // Each driver once, as stevedore loads it once: `driver = messagingv2`
        // in two files sends each notification once, not twice.
        let mut drivers: Vec<NotifyDriver> = Vec::new();
        for name in &notifications.driver {
            match NotifyDriver::from_name(name) {
                Some(driver) if !drivers.contains(&driver) => drivers.push(driver),
                Some(_) => {}
                None => tracing::warn!(driver = %name, "skipping a notification driver this framework does not have"),
            }
        }
        let retry = match notifications.retry {
            retry if retry < 0 => Retry::Forever,
            0 => Retry::Never,
            retry => Retry::Limited(u32::try_from(retry).unwrap_or(u32::MAX)),
        };
        Notifier::new(transport, publisher_id)
            .drivers(drivers)
            .topics(notifications.topics.clone())
            .retry(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_text("nova.conf", text).expect("a valid file")
    }

    #[test]
    fn urls_carry_the_files_options() {
        let config = config(
            "[DEFAULT]\ntransport_url = rabbit://nova:s3cret@h1:5672,nova:s3cret@h2:5672/nova\ncontrol_exchange = nova\n\
             [oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n\
             [oslo_messaging_notifications]\ntransport_url = rabbit://n:p@h3:5672/\n",
        );
        let oslo = "codec=oslo&heartbeat_timeout_threshold=60";
        assert_eq!(
            config.rpc_url(),
            format!(
                "rabbit://nova:s3cret@h1:5672,nova:s3cret@h2:5672/nova?control_exchange=nova&rabbit_quorum_queue=true&{oslo}"
            )
        );
        assert_eq!(
            config.notification_url(),
            format!("rabbit://n:p@h3:5672/?control_exchange=nova&rabbit_quorum_queue=true&{oslo}")
        );
    }

    /// A transport configured from oslo's files speaks oslo's JSON with
    /// oslo's 60 s heartbeat: MessagePack, the transport's own default, made
    /// every call to a Python server time out, and its 10 s heartbeat had
    /// the broker drop a connection oslo's would keep. The files' heartbeat,
    /// or the URL's, under either name, wins; so does the URL's codec.
    #[test]
    fn a_transport_from_oslo_files_speaks_as_oslo_does() {
        let bare = config("[DEFAULT]\ntransport_url = rabbit://h:5672/\n");
        assert_eq!(
            bare.rpc_url(),
            "rabbit://h:5672/?codec=oslo&heartbeat_timeout_threshold=60"
        );
        let set = config(
            "[DEFAULT]\ntransport_url = rabbit://h:5672/\n[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 30\n",
        );
        assert_eq!(
            set.rpc_url(),
            "rabbit://h:5672/?heartbeat_timeout_threshold=30&codec=oslo"
        );
        let own = config(
            "[DEFAULT]\ntransport_url = rabbit://h:5672/?heartbeat=5&codec=msgpack&durable=true\n\
             [oslo_messaging_rabbit]\namqp_durable_queues = false\n",
        );
        assert_eq!(own.rpc_url(), "rabbit://h:5672/?heartbeat=5&codec=msgpack&durable=true");
    }

    #[tokio::test]
    async fn a_file_written_for_rabbitmq_opens_memory_by_its_url_alone() {
        let config = config(
            "[DEFAULT]\ntransport_url = memory://tests\ncontrol_exchange = nova\n\
             [oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 30\namqp_durable_queues = true\n",
        );
        assert_eq!(config.rpc_url(), "memory://tests?control_exchange=nova");
        let transport = config.transport().await.expect("memory opens");
        assert_eq!(transport.control_exchange(), "nova");
    }

    #[test]
    fn oslo_defaults_apply_when_unset() {
        let config = config("[DEFAULT]\n");
        assert_eq!(
            config.rpc_url(),
            "rabbit://guest:guest@localhost:5672/?codec=oslo&heartbeat_timeout_threshold=60"
        );
        assert_eq!(config.call_timeout(), Duration::from_secs(60));
        assert_eq!(config.executor(), Executor::Concurrent(64));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn servers_clients_and_notifiers_follow_the_files() {
        let config = config(
            "[DEFAULT]\ntransport_url = memory://from_config\nrpc_response_timeout = 7\n\
             executor_thread_pool_size = 3\nrpc_ping_enabled = true\n\
             [oslo_messaging_notifications]\ndriver = log\ndriver = routing\ndriver = messaging\ntopics = a, b\nretry = 2\n",
        );
        assert_eq!(config.call_timeout(), Duration::from_secs(7));
        assert_eq!(config.executor(), Executor::Concurrent(3));
        let transport = config.transport().await.expect("memory transport");
        let client = config.client(transport.clone(), Target::topic("t"));
        assert_eq!(client.call_timeout(), Duration::from_secs(7));
        let notifier = config.notifier(transport, "svc");
        let debug = format!("{notifier:?}");
        assert!(
            debug.contains("[Log, Messaging]") && debug.contains("\"a\"") && debug.contains("Limited(2)"),
            "{debug}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_services_default_exchange_applies_unless_the_files_set_one() {
        // nova's code sets `nova`; its files rarely do.
        let unset = config("[DEFAULT]\ntransport_url = memory://nova_default\n").with_default_control_exchange("nova");
        assert!(unset.rpc_url().contains("control_exchange=nova"), "{}", unset.rpc_url());
        let transport = unset.transport().await.expect("memory transport");
        assert_eq!(transport.control_exchange(), "nova");
        let set = config("[DEFAULT]\ntransport_url = rabbit://h/\ncontrol_exchange = cells\n")
            .with_default_control_exchange("nova");
        assert_eq!(set.options().default.control_exchange, "cells");
        assert!(set.rpc_url().contains("control_exchange=cells"), "{}", set.rpc_url());
    }

    #[test]
    fn an_empty_notification_url_falls_back_to_the_rpc_one() {
        // A templated value left empty: oslo's `url or conf.transport_url`.
        let config = config(
            "[DEFAULT]\ntransport_url = rabbit://u:p@rpc-host:5672/\n\
             [oslo_messaging_notifications]\ntransport_url =\n",
        );
        let options = config.options();
        assert!(options.notifications.transport_url.is_none());
        assert_eq!(
            options.notification_transport_url(),
            options.default.transport_url.as_ref()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_driver_named_twice_sends_once() {
        // As two files would give it: stevedore loads each driver once.
        let config = config(
            "[DEFAULT]\ntransport_url = memory://twice\n\
             [oslo_messaging_notifications]\ndriver = messagingv2\ndriver = log\ndriver = messagingv2\n",
        );
        let transport = config.transport().await.expect("memory transport");
        let debug = format!("{:?}", config.notifier(transport, "svc"));
        assert!(debug.contains("[MessagingV2, Log]"), "{debug}");
    }
}
