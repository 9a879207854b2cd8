//! Configuration files shaped as kolla-ansible and openstack-ansible write them.

mod common;

use std::path::PathBuf;

use common::Scratch;
use rpc_config::{
    Config, FailoverStrategy, IgnoreReason, NOTIFICATIONS_SECTION, RABBIT_SECTION, Scheme, Sources, TransportHost,
};

const KOLLA_NOVA: &str = "\
[DEFAULT]
debug = False
log_dir = /var/log/kolla/nova
state_path = /var/lib/nova
transport_url = rabbit://openstack:secret@10.0.0.11:5672,openstack:secret@10.0.0.12:5672,openstack:secret@10.0.0.13:5672//

[oslo_messaging_rabbit]
rabbit_quorum_queue = true
heartbeat_in_pthread = false

[oslo_messaging_notifications]
transport_url = rabbit://openstack:secret@10.0.0.11:5672//
driver = messagingv2
topics = notifications
";

#[test]
fn kolla_nova_conf() {
    let scratch = Scratch::new("kolla");
    let nova = scratch.write("nova.conf", KOLLA_NOVA);
    let config = Config::from_files(&[&nova]).unwrap();
    let options = config.options();

    let url = options.default.transport_url.as_ref().unwrap();
    assert_eq!(url.scheme(), Scheme::Rabbit);
    assert_eq!(
        url.hosts(),
        [
            TransportHost::new("10.0.0.11", Some(5672)).with_credentials("openstack", "secret"),
            TransportHost::new("10.0.0.12", Some(5672)).with_credentials("openstack", "secret"),
            TransportHost::new("10.0.0.13", Some(5672)).with_credentials("openstack", "secret"),
        ]
    );
    assert_eq!(url.virtual_host(), Some("/"));
    assert_eq!(
        url.to_string(),
        "rabbit://openstack:***@10.0.0.11:5672,openstack:***@10.0.0.12:5672,openstack:***@10.0.0.13:5672//"
    );
    assert!(url.full_url().contains("openstack:secret@10.0.0.13:5672//"));

    assert!(options.rabbit.rabbit_quorum_queue);
    assert!(!options.rabbit.amqp_durable_queues);
    assert_eq!(options.rabbit.heartbeat_timeout_threshold, 60);
    assert_eq!(options.default.control_exchange, "openstack");
    assert_eq!(options.default.rpc_response_timeout, 60);

    assert_eq!(options.notifications.driver, ["messagingv2"]);
    assert_eq!(options.notifications.topics, ["notifications"]);
    assert_eq!(options.notifications.retry, -1);
    assert!(options.notifications.enabled());
    let notifications = options.notification_transport_url().unwrap();
    assert_eq!(notifications.hosts().len(), 1);
    assert_eq!(notifications.hosts()[0].hostname.as_deref(), Some("10.0.0.11"));

    // heartbeat_in_pthread is an oslo option this transport does not use.
    let ignored = config.ignored_options();
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert_eq!(ignored[0].section, RABBIT_SECTION);
    assert_eq!(ignored[0].option, "heartbeat_in_pthread");
    assert_eq!(ignored[0].reason, IgnoreReason::Unsupported);
    assert_eq!(
        (ignored[0].location.path.clone(), ignored[0].location.line),
        (nova.clone(), 9)
    );
    assert!(config.deprecated_options().is_empty());

    // The raw accessors, with origins.
    assert_eq!(config.get("DEFAULT", "state_path"), Some("/var/lib/nova"));
    assert_eq!(config.get("DEFAULT", "debug"), Some("False"));
    assert_eq!(config.get("DEFAULT", "missing"), None);
    assert_eq!(config.get("default", "debug"), None, "[default] is not [DEFAULT]");
    assert_eq!(config.get("OSLO_MESSAGING_RABBIT", "rabbit_quorum_queue"), Some("true"));
    let location = config.location(NOTIFICATIONS_SECTION, "driver").unwrap();
    assert_eq!(location.to_string(), format!("{}:13", nova.display()));
    assert_eq!(config.files(), [nova]);

    // The transport gets the rabbit options through its URL's query.
    assert_eq!(
        url.full_url_with(&options.transport_query()),
        "rabbit://openstack:secret@10.0.0.11:5672,openstack:secret@10.0.0.12:5672,openstack:secret@10.0.0.13:5672//\
         ?rabbit_quorum_queue=true"
    );
}

const OSA_NEUTRON: &str = "\
# Ansible managed

[DEFAULT]
# Messaging
transport_url = rabbit://neutron:s3cr%40t@172.29.236.100:5671,neutron:s3cr%40t@172.29.236.101:5671//neutron?ssl=1
control_exchange: neutron
rpc_response_timeout = 120
executor_thread_pool_size = 64

[oslo_messaging_rabbit]
ssl = True
ssl_ca_file = /etc/ssl/certs/ca.pem
ssl_version = TLSv1_2
rabbit_ha_queues = True
amqp_durable_queues = True
rabbit_retry_interval = 2
kombu_failover_strategy = shuffle
rabbit_qos_prefetch_count = 10
; a comment in the INI style

[oslo_messaging_notifications]
driver = messagingv2
driver = log
topics = notifications,
  notifications_designate
transport_url = rabbit://neutron:s3cr%40t@172.29.236.100:5671//neutron?ssl=1
";

#[test]
fn openstack_ansible_neutron_conf() {
    let scratch = Scratch::new("osa");
    let neutron = scratch.write("neutron.conf", OSA_NEUTRON);
    let config = Config::from_files(&[&neutron]).unwrap();
    let options = config.options();

    let url = options.default.transport_url.as_ref().unwrap();
    assert_eq!(url.virtual_host(), Some("/neutron"));
    assert_eq!(url.hosts()[1].password(), Some("s3cr@t"));
    assert_eq!(url.hosts()[1].port, Some(5671));
    assert_eq!(url.query_value("ssl"), Some("1"));
    assert_eq!(options.default.control_exchange, "neutron");
    assert_eq!(options.default.rpc_response_timeout, 120);

    let rabbit = &options.rabbit;
    assert!(rabbit.ssl);
    assert_eq!(rabbit.ssl_ca_file, Some(PathBuf::from("/etc/ssl/certs/ca.pem")));
    assert_eq!(rabbit.ssl_cert_file, None);
    assert!(rabbit.amqp_durable_queues);
    assert_eq!(rabbit.rabbit_retry_interval, 2);
    assert_eq!(rabbit.kombu_failover_strategy, FailoverStrategy::Shuffle);
    assert_eq!(rabbit.rabbit_qos_prefetch_count, 10);

    // Repeated driver lines are all kept; the continued list is split at commas.
    assert_eq!(options.notifications.driver, ["messagingv2", "log"]);
    assert_eq!(
        options.notifications.topics,
        ["notifications", "notifications_designate"]
    );
    assert_eq!(
        config.get_all(NOTIFICATIONS_SECTION, "driver"),
        ["messagingv2".to_owned(), "log".to_owned()]
    );
    let lines: Vec<usize> = config
        .setting(NOTIFICATIONS_SECTION, "driver")
        .unwrap()
        .locations()
        .iter()
        .map(|location| location.line)
        .collect();
    assert_eq!(lines, [22, 23]);

    let ignored: Vec<(&str, IgnoreReason)> = config
        .ignored_options()
        .iter()
        .map(|ignored| (ignored.option.as_str(), ignored.reason))
        .collect();
    assert_eq!(
        ignored,
        [
            ("rabbit_ha_queues", IgnoreReason::Unsupported),
            ("ssl_version", IgnoreReason::Unsupported)
        ]
    );

    let query = options.transport_query();
    let names: Vec<&str> = query.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "control_exchange",
            "ssl",
            "ssl_ca_file",
            "rabbit_qos_prefetch_count",
            "rabbit_retry_interval",
            "kombu_failover_strategy",
            "amqp_durable_queues"
        ]
    );
    // The URL's own `ssl=1` wins over the section's `ssl = True`.
    assert_eq!(
        url.full_url_with(&query),
        "rabbit://neutron:s3cr%40t@172.29.236.100:5671,neutron:s3cr%40t@172.29.236.101:5671//neutron?ssl=1\
         &control_exchange=neutron&ssl_ca_file=%2Fetc%2Fssl%2Fcerts%2Fca.pem&rabbit_qos_prefetch_count=10\
         &rabbit_retry_interval=2&kombu_failover_strategy=shuffle&amqp_durable_queues=true"
    );
}

#[test]
fn later_files_override_earlier_ones_option_by_option() {
    let scratch = Scratch::new("override");
    let base = scratch.write(
        "nova.conf",
        "[DEFAULT]\ntransport_url = rabbit://a:pa@old:5672//\nrpc_response_timeout = 30\n\
         [oslo_messaging_rabbit]\nrabbit_quorum_queue = false\nheartbeat_timeout_threshold = 30\n\
         [oslo_messaging_notifications]\ndriver = messagingv2\n",
    );
    let overrides = scratch.write(
        "override.conf",
        "[DEFAULT]\ntransport_url = rabbit://b:pb@new:5672//\n\
         [Oslo_Messaging_Rabbit]\nrabbit_quorum_queue = yes\n\
         [oslo_messaging_notifications]\ndriver = log\ndriver = noop\n",
    );
    let config = Config::from_files(&[&base, &overrides]).unwrap();
    let options = config.options();
    let url = options.default.transport_url.as_ref().unwrap();
    assert_eq!(url.hosts()[0].hostname.as_deref(), Some("new"));
    assert_eq!(options.default.rpc_response_timeout, 30, "kept from the first file");
    assert!(
        options.rabbit.rabbit_quorum_queue,
        "overridden, through a differently-cased section"
    );
    assert_eq!(options.rabbit.heartbeat_timeout_threshold, 30);
    // Multi-valued: every file's values, in file order.
    assert_eq!(options.notifications.driver, ["messagingv2", "log", "noop"]);
    let location = config.location("DEFAULT", "transport_url").unwrap();
    assert_eq!((location.path.clone(), location.line), (overrides.clone(), 2));
    assert_eq!(config.files(), [base.clone(), overrides.clone()]);

    // The other order gives the other values.
    let config = Config::from_files(&[&overrides, &base]).unwrap();
    assert_eq!(
        config.options().default.transport_url.as_ref().unwrap().hosts()[0]
            .hostname
            .as_deref(),
        Some("old")
    );
    assert!(!config.options().rabbit.rabbit_quorum_queue);
    assert_eq!(config.options().notifications.driver, ["log", "noop", "messagingv2"]);
}

#[test]
fn config_dir_files_sorted_after_earlier_files() {
    let scratch = Scratch::new("dir");
    let main = scratch.write(
        "nova.conf",
        "[DEFAULT]\ncontrol_exchange = nova\nrpc_response_timeout = 10\n[oslo_messaging_rabbit]\nrabbit_interval_max = 5\n",
    );
    scratch.write("nova.conf.d/20-timeout.conf", "[DEFAULT]\nrpc_response_timeout = 20\n");
    scratch.write(
        "nova.conf.d/10-timeout.conf",
        "[DEFAULT]\nrpc_response_timeout = 15\nexecutor_thread_pool_size = 8\n",
    );
    scratch.write("nova.conf.d/.hidden.conf", "[DEFAULT]\nrpc_response_timeout = 99\n");
    scratch.write("nova.conf.d/notes.txt", "not a config file\n");
    scratch.write("nova.conf.d/30-broken.conf.orig", "broken\n");
    std::fs::create_dir_all(scratch.path("nova.conf.d/99-dir.conf")).unwrap();
    let last = scratch.write("last.conf", "[oslo_messaging_rabbit]\nrabbit_interval_max = 7\n");

    let sources = Sources::new().file(&main).dir(scratch.path("nova.conf.d")).file(&last);
    assert_eq!(
        sources.resolve().unwrap(),
        [
            main.clone(),
            scratch.path("nova.conf.d/10-timeout.conf"),
            scratch.path("nova.conf.d/20-timeout.conf"),
            last.clone()
        ]
    );
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.options().default.rpc_response_timeout, 20);
    assert_eq!(config.options().default.executor_thread_pool_size, 8);
    assert_eq!(config.options().default.control_exchange, "nova");
    assert_eq!(config.options().rabbit.rabbit_interval_max, 7);
    assert_eq!(config.files().len(), 4);

    // A directory given before a file is overridden by it (command-line order).
    let config = Config::load(&Sources::new().dir(scratch.path("nova.conf.d")).file(&main)).unwrap();
    assert_eq!(config.options().default.rpc_response_timeout, 10);
    assert_eq!(config.options().default.executor_thread_pool_size, 8);
}

/// oslo.messaging 18's deprecated names are read; the names older releases
/// read and 18 no longer does (its options declare none of them any more)
/// are ignored, as Python services ignore them, and reported as retired.
/// (They were read: a `[DEFAULT] notification_topics` sent this service's
/// notifications elsewhere than its Python neighbours', and a
/// `rabbit_durable_queues` declared a durable exchange they then could not
/// declare.)
#[test]
fn deprecated_names_are_honoured_and_retired_ones_reported() {
    let scratch = Scratch::new("deprecated");
    let old = scratch.write(
        "old.conf",
        "[DEFAULT]\nnotification_driver = messaging\nnotification_topics = legacy\nrpc_thread_pool_size = 16\n\
         rabbit_durable_queues = true\nrpc_conn_pool_size = 5\n\
         [oslo_messaging_rabbit]\nkombu_reconnect_timeout = 30\nssl_version = TLSv1_2\n\
         [rpc_notifier2]\ntopics = older\n",
    );
    let config = Config::from_files(&[&old]).unwrap();
    let options = config.options();
    assert!(options.notifications.driver.is_empty());
    assert_eq!(options.notifications.topics, ["notifications"]);
    assert_eq!(options.default.executor_thread_pool_size, 16);
    assert!(!options.rabbit.amqp_durable_queues);
    assert_eq!(options.rabbit.rpc_conn_pool_size, 30);
    assert_eq!(options.rabbit.kombu_missing_consumer_retry_timeout, 30);
    let deprecated: Vec<String> = config
        .deprecated_options()
        .iter()
        .map(|option| {
            format!(
                "{}.{}->{}.{}",
                option.section, option.option, option.replacement_section, option.replacement_option
            )
        })
        .collect();
    assert_eq!(
        deprecated,
        [
            "DEFAULT.rpc_thread_pool_size->DEFAULT.executor_thread_pool_size",
            "oslo_messaging_rabbit.kombu_reconnect_timeout->oslo_messaging_rabbit.kombu_missing_consumer_retry_timeout",
        ]
    );
    let retired: Vec<(String, IgnoreReason)> = config
        .ignored_options()
        .iter()
        .map(|option| (format!("{}.{}", option.section, option.option), option.reason))
        .collect();
    let retired_for = |replacement| IgnoreReason::Retired { replacement };
    assert_eq!(
        retired,
        [
            (
                "DEFAULT.notification_driver".to_owned(),
                retired_for("[oslo_messaging_notifications] driver")
            ),
            (
                "DEFAULT.notification_topics".to_owned(),
                retired_for("[oslo_messaging_notifications] topics")
            ),
            (
                "DEFAULT.rabbit_durable_queues".to_owned(),
                retired_for("[oslo_messaging_rabbit] amqp_durable_queues")
            ),
            (
                "DEFAULT.rpc_conn_pool_size".to_owned(),
                retired_for("[oslo_messaging_rabbit] rpc_conn_pool_size")
            ),
            (
                "rpc_notifier2.topics".to_owned(),
                retired_for("[oslo_messaging_notifications] topics")
            ),
            (
                "oslo_messaging_rabbit.ssl_version".to_owned(),
                IgnoreReason::Unsupported
            ),
        ]
    );
    let shown = config.ignored_options()[0].to_string();
    assert!(
        shown.contains("no longer reads") && shown.contains("set [oslo_messaging_notifications] driver"),
        "{shown}"
    );

    // A newer file's deprecated name beats an older file's current name; in
    // one file the current name wins.
    let new = scratch.write(
        "new.conf",
        "[DEFAULT]\nrpc_thread_pool_size = 4\nnotification_driver = log\n\
         [oslo_messaging_notifications]\ndriver = noop\n",
    );
    let base = scratch.write(
        "base.conf",
        "[DEFAULT]\nexecutor_thread_pool_size = 32\n[oslo_messaging_notifications]\ndriver = messagingv2\n",
    );
    let config = Config::from_files(&[&base, &new]).unwrap();
    assert_eq!(config.options().default.executor_thread_pool_size, 4);
    // Multi-valued: files in order; the retired name is not among them.
    assert_eq!(config.options().notifications.driver, ["messagingv2", "noop"]);
    let both = scratch.write(
        "both.conf",
        "[DEFAULT]\nexecutor_thread_pool_size = 12\nrpc_thread_pool_size = 3\n",
    );
    let config = Config::from_files(&[&both]).unwrap();
    assert_eq!(config.options().default.executor_thread_pool_size, 12);
    assert!(config.deprecated_options().is_empty());
}

#[test]
fn substitution_in_values() {
    let config = Config::from_text(
        "nova.conf",
        "[DEFAULT]\nrabbit_password = pa$$word\nrabbit_host = 10.0.0.5\n\
         transport_url = rabbit://nova:$rabbit_password@${rabbit_host}:5672/\\$vhost\n\
         control_exchange = ${DEFAULT.rabbit_host}-exchange\n\
         [oslo_messaging_rabbit]\nssl_ca_file = /etc/$rabbit_host/ca.pem\n",
    )
    .unwrap();
    let options = config.options();
    let url = options.default.transport_url.as_ref().unwrap();
    assert_eq!(url.hosts()[0].password(), Some("pa$word"));
    assert_eq!(url.hosts()[0].hostname.as_deref(), Some("10.0.0.5"));
    assert_eq!(url.virtual_host(), Some("$vhost"));
    assert_eq!(options.default.control_exchange, "10.0.0.5-exchange");
    assert_eq!(options.rabbit.ssl_ca_file, Some(PathBuf::from("/etc/10.0.0.5/ca.pem")));
    // The raw accessor gives the value as written.
    assert_eq!(config.get("DEFAULT", "rabbit_password"), Some("pa$$word"));
}

#[test]
fn misspelt_options_are_reported_not_fatal() {
    let config = Config::from_text(
        "glance.conf",
        "[DEFAULT]\nsome_service_option = 1\n\
         [oslo_messaging_rabbit]\nrabbit_quorum_queues = true\nrabbit_ha_queues = false\n\
         [oslo_messaging_notifications]\ntopic = notifications\ndriver = noop\n",
    )
    .unwrap();
    let ignored: Vec<String> = config.ignored_options().iter().map(ToString::to_string).collect();
    assert_eq!(
        ignored,
        [
            "glance.conf:5: ignoring `rabbit_ha_queues` in [oslo_messaging_rabbit]: \
             an oslo.messaging option this transport does not use",
            "glance.conf:4: ignoring `rabbit_quorum_queues` in [oslo_messaging_rabbit]: \
             not an oslo.messaging option (misspelt?)",
            "glance.conf:7: ignoring `topic` in [oslo_messaging_notifications]: not an oslo.messaging option (misspelt?)",
        ]
    );
    // The misspelt option has no effect, `[DEFAULT]` options of the service are not reported,
    // and `noop` sends nothing.
    assert!(!config.options().rabbit.rabbit_quorum_queue);
    assert!(!config.options().notifications.enabled());
    assert_eq!(config.options().notifications.driver, ["noop"]);
}
