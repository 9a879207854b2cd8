//! `rpc notify`: sends one notification.

use clap::Args;
use rpc_core::notify::{Notifier, NotifyDriver, Priority};

use crate::args::object;
use crate::commands::listen::parse_priority;
use crate::connect::Global;
use crate::exit::Exit;

/// `rpc notify`.
#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// The event type, e.g. `compute.instance.create.end`.
    #[arg(long, value_name = "TYPE")]
    event_type: String,
    /// The priority: audit, debug, info, warn, error, critical or sample.
    #[arg(long, default_value = "info", value_parser = parse_priority)]
    priority: Priority,
    /// Who sends it, e.g. `compute.host-1`.
    #[arg(long, default_value = "rpc-cli", value_name = "ID")]
    publisher_id: String,
    /// The payload, JSON (any value).
    #[arg(long, default_value = "{}", value_name = "JSON")]
    payload: String,
    /// The request context, a JSON object.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// A topic to send on; repeat it (default: the files' topics, else `notifications`).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// oslo's driver: messagingv2 (the 2.0 envelope), messaging (1.0), log, noop
    /// (default: the files' first driver, else messagingv2).
    #[arg(long, value_parser = parse_driver)]
    driver: Option<NotifyDriver>,
    /// The exchange; the transport's control exchange by default.
    #[arg(long, value_name = "NAME")]
    exchange: Option<String>,
}

/// The drivers this tool has, as its messages name them.
const DRIVERS: &str = "messagingv2, messaging, log or noop";

fn parse_driver(name: &str) -> Result<NotifyDriver, String> {
    NotifyDriver::from_name(name).ok_or_else(|| format!("unknown driver `{name}`; expected {DRIVERS}"))
}

/// Refuses files whose notification drivers are all ones this framework
/// does not have (oslo's `routing`, say): the notifier would send nothing,
/// and the command would say it sent.
fn refuse_unknown_drivers(drivers: &[String]) -> Result<(), Exit> {
    if drivers.is_empty() || drivers.iter().any(|name| NotifyDriver::from_name(name).is_some()) {
        return Ok(());
    }
    Err(Exit::Usage(format!(
        "the files' notification drivers ({}) are none this tool has: nothing would be sent; \
         pass --driver {DRIVERS}",
        drivers.join(", ")
    )))
}

/// Sends the notification.
pub(crate) async fn notify(global: &Global, args: NotifyArgs) -> Result<(), Exit> {
    let payload: serde_json::Value =
        serde_json::from_str(&args.payload).map_err(|error| Exit::Usage(format!("--payload is not JSON: {error}")))?;
    let ctx = match &args.context {
        Some(json) => rpc_core::Context::from(object("--context", json)?),
        None => rpc_core::Context::new(),
    };
    let config = global.config()?;
    if let Some(config) = config.filter(|_| args.driver.is_none()) {
        refuse_unknown_drivers(&config.options().notifications.driver)?;
    }
    // The drivers that will run: only `messaging` ones need the broker (a
    // `log` notification was refused, after a long wait, when none answered).
    let drivers: Vec<NotifyDriver> = match (args.driver, config) {
        (Some(driver), _) => vec![driver],
        (None, Some(config)) => config
            .options()
            .notifications
            .driver
            .iter()
            .filter_map(|name| NotifyDriver::from_name(name))
            .collect(),
        (None, None) => Vec::new(),
    };
    let over_the_broker = drivers.is_empty() || drivers.iter().any(|driver| driver.uses_transport());
    if !drivers.is_empty() && drivers.iter().all(|driver| *driver == NotifyDriver::Noop) {
        tracing::warn!("the notification driver is noop: nothing is sent");
    }
    let transport = if over_the_broker {
        global.notification_transport().await?
    } else {
        rpc_core::transport::memory::Broker::new().transport()
    };
    let mut notifier = match config {
        // The files' driver, topics and retry, then the command line's.
        // Files without a driver send nothing, as oslo does; the command asks to send.
        Some(config) if config.options().notifications.driver.is_empty() => config
            .notifier(transport, &args.publisher_id)
            .driver(NotifyDriver::MessagingV2),
        Some(config) => config.notifier(transport, &args.publisher_id),
        None => Notifier::new(transport, &args.publisher_id),
    };
    if let Some(driver) = args.driver {
        notifier = notifier.driver(driver);
    }
    if !args.topics.is_empty() {
        notifier = notifier.topics(args.topics.clone());
    }
    if let Some(exchange) = &args.exchange {
        notifier = notifier.exchange(exchange);
    }
    notifier = notifier.codec(global.codec.into());
    notifier
        .notify(&ctx, args.priority, &args.event_type, &payload)
        .await
        .map_err(Exit::from)
}
