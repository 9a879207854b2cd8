//! Publishing with publisher confirms and mandatory routing.
//!
//! Two paths:
//!
//! - **the lane** (calls, casts, replies): one channel driven by one task,
//!   many publishes in flight. The task starts every publish itself, so the
//!   broker's delivery tags follow the order of the frames; it takes the
//!   confirms in batches and attributes returned (unroutable) messages by
//!   their `message_id`. lapin hands a return to whichever confirm completes
//!   next, which is never later than the returned message's own confirm, so a
//!   batch sees every return before it answers the publishes it belongs to.
//!   Few channels matter: lapin's I/O loop walks every channel for each
//!   frame it writes.
//! - **isolated publishes** (fanout casts, and checking that an exchange
//!   exists): one publish per channel at a time, from a small pool, because
//!   the broker closes the channel of a publish to a missing exchange, which
//!   would fail every other publish on a shared channel.
//!
//! An exchange is checked once per connection (a passive declare) before
//! the lane publishes to it; a missing exchange means no server ever
//! listened there.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};
use rpc_core::transport::Retry;
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::config::AmqpConfig;
use crate::error::from_lapin;
use crate::link::{Connected, Link};
use crate::topology::short;

/// A message to publish.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) exchange: ShortString,
    pub(crate) routing_key: ShortString,
    /// Ask the broker to return the message when no queue is bound for it.
    pub(crate) mandatory: bool,
    pub(crate) body: Bytes,
    pub(crate) properties: BasicProperties,
    /// When the message becomes useless: its expiration is the time left
    /// when it is published, and it is not published after.
    pub(crate) deadline: Option<Instant>,
}

/// The longest per-message expiration RabbitMQ takes, in milliseconds; a
/// message with more time left is published without one.
const MAX_EXPIRATION_MS: u128 = u32::MAX as u128;

impl Message {
    /// The properties to publish with now, the expiration set from the time
    /// left; `Err` when the deadline has passed.
    fn properties_now(&self) -> Result<BasicProperties, TransportError> {
        let Some(deadline) = self.deadline else {
            return Ok(self.properties.clone());
        };
        let left = deadline.saturating_duration_since(Instant::now()).as_millis();
        match left {
            0 => Err(TransportError::new(
                TransportErrorKind::Expired,
                "the caller's deadline passed before the message could be published",
            )),
            left if left > MAX_EXPIRATION_MS => Ok(self.properties.clone()),
            left => Ok(self.properties.clone().with_expiration(left.to_string().into())),
        }
    }
}

/// What the broker did with a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Routed to at least one queue (or to none, for a message that was not mandatory).
    Routed,
    /// Returned: no queue is bound for it.
    Returned,
    /// The exchange does not exist: no server ever declared it. (Clients
    /// declare nothing, so nothing lingers when nobody listens.)
    NoExchange,
}

/// Publishes on the transport's publishing connection.
pub(crate) struct Publisher {
    link: Arc<Link>,
    lane: mpsc::UnboundedSender<Job>,
    isolated: Mutex<Pool>,
    /// Bounds the isolated channels in use.
    slots: Semaphore,
    /// Exchanges known to exist on the current connection.
    exchanges: Mutex<Known>,
    /// One exchange check at a time: concurrent first publishes wait for it.
    checking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Pool {
    generation: u64,
    idle: Vec<Channel>,
}

#[derive(Default)]
struct Known {
    generation: u64,
    names: HashSet<String>,
}

/// A publish handed to the lane.
struct Job {
    connected: Arc<Connected>,
    exchange: ShortString,
    routing_key: ShortString,
    mandatory: bool,
    body: Bytes,
    properties: BasicProperties,
    done: oneshot::Sender<Result<Outcome, TransportError>>,
}

impl Publisher {
    pub(crate) fn new(link: Arc<Link>, config: &AmqpConfig) -> Publisher {
        let (lane, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(jobs));
        Publisher {
            link,
            lane,
            isolated: Mutex::default(),
            slots: Semaphore::new(config.max_channels.max(1)),
            exchanges: Mutex::default(),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// Publishes `message` on the lane and waits for the broker's confirm;
    /// first checks that its exchange exists. While the broker is
    /// unreachable, waits for a reconnection as `retry` allows. A publish
    /// interrupted by a connection loss is not repeated: it may have reached
    /// the broker.
    pub(crate) async fn publish(&self, message: Message, retry: Retry) -> Result<Outcome, TransportError> {
        let connected = self.link.connected(retry).await?;
        let exchange = message.exchange.as_str();
        if !exchange.is_empty() && !self.exchange_exists(&connected, exchange).await? {
            return Ok(Outcome::NoExchange);
        }
        let properties = message.properties_now()?;
        let (done, outcome) = oneshot::channel();
        let job = Job {
            connected: Arc::clone(&connected),
            exchange: message.exchange,
            routing_key: message.routing_key,
            mandatory: message.mandatory,
            body: message.body,
            properties,
            done,
        };
        if self.lane.send(job).is_err() {
            return Err(TransportError::new(
                TransportErrorKind::Closed,
                "the transport is closed",
            ));
        }
        let outcome = outcome
            .await
            .map_err(|_| TransportError::new(TransportErrorKind::Closed, "the transport is closed"))?;
        if matches!(outcome, Ok(Outcome::NoExchange)) {
            // An exchange was deleted since we checked (rare): check again.
            self.known(&connected).names.clear();
        }
        outcome.map_err(|error| connection_error(&connected, error))
    }

    /// Publishes `message` alone on a channel of its own: for publishes that
    /// may close their channel (an auto-delete exchange may vanish).
    pub(crate) async fn publish_isolated(&self, message: Message, retry: Retry) -> Result<Outcome, TransportError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| TransportError::new(TransportErrorKind::Closed, "the transport is closed"))?;
        let connected = self.link.connected(retry).await?;
        let properties = message.properties_now()?;
        let channel = self.channel(&connected).await?;
        let options = BasicPublishOptions {
            mandatory: message.mandatory,
            immediate: false,
        };
        let published = async {
            let confirm = channel
                .basic_publish(
                    message.exchange,
                    message.routing_key,
                    options,
                    &message.body,
                    properties,
                )
                .await
                .map_err(|error| from_lapin(error, "publishing"))?;
            Ok::<_, TransportError>(confirm.await)
        }
        .await;
        match published {
            Ok(Ok(confirmation)) => {
                self.release(&connected, channel);
                let (kind, returned) = split(confirmation);
                outcome(kind, returned.is_some())
            }
            // The broker closes the channel of a publish to a missing exchange.
            Ok(Err(error)) if is_not_found(&error) => Ok(Outcome::NoExchange),
            Ok(Err(error)) => Err(connection_error(
                &connected,
                from_lapin(error, "waiting for the publish confirm"),
            )),
            Err(error) => Err(connection_error(&connected, error)),
        }
    }

    fn known(&self, connected: &Connected) -> MutexGuard<'_, Known> {
        let mut known = self.exchanges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.generation != connected.generation {
            *known = Known {
                generation: connected.generation,
                ..Known::default()
            };
        }
        known
    }

    /// Whether `exchange` exists, checked once per connection.
    async fn exchange_exists(&self, connected: &Connected, exchange: &str) -> Result<bool, TransportError> {
        if self.known(connected).names.contains(exchange) {
            return Ok(true);
        }
        let _checking = self.checking.lock().await;
        if self.known(connected).names.contains(exchange) {
            return Ok(true);
        }
        let channel = self.channel(connected).await?;
        let options = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        match channel
            .exchange_declare(short(exchange)?, ExchangeKind::Topic, options, FieldTable::default())
            .await
        {
            Ok(()) => {
                self.release(connected, channel);
                self.known(connected).names.insert(exchange.to_owned());
                Ok(true)
            }
            // The broker closed the channel: it is dropped.
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(connection_error(
                connected,
                from_lapin(error, format!("checking exchange `{exchange}`")),
            )),
        }
    }

    fn pool(&self, connected: &Connected) -> MutexGuard<'_, Pool> {
        let mut pool = self.isolated.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.generation != connected.generation {
            // A new connection: the old channels are gone.
            *pool = Pool {
                generation: connected.generation,
                ..Pool::default()
            };
        }
        pool
    }

    async fn channel(&self, connected: &Connected) -> Result<Channel, TransportError> {
        loop {
            let idle = self.pool(connected).idle.pop();
            match idle {
                Some(channel) if channel.status().connected() => return Ok(channel),
                Some(_) => continue,
                None => break,
            }
        }
        open_channel(connected).await
    }

    fn release(&self, connected: &Connected, channel: Channel) {
        if channel.status().connected() {
            let mut pool = self.pool(connected);
            if pool.generation == connected.generation {
                pool.idle.push(channel);
            }
        }
    }
}

async fn open_channel(connected: &Connected) -> Result<Channel, TransportError> {
    let channel = connected
        .connection
        .create_channel()
        .await
        .map_err(|error| connection_error(connected, from_lapin(error, "opening a channel")))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| connection_error(connected, from_lapin(error, "enabling publisher confirms")))?;
    Ok(channel)
}

/// Reports a failure on a dead connection as a lost connection.
fn connection_error(connected: &Connected, error: TransportError) -> TransportError {
    if connected.connection.status().connected() || error.kind() == TransportErrorKind::ConnectionLost {
        error
    } else {
        TransportError::new(TransportErrorKind::ConnectionLost, error.message().to_owned()).with_source(error)
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// A confirmation without its returned message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    Ack,
    Nack,
}

/// The confirmation's kind, and the `message_id` of the returned message it
/// carries, which may be another publish's.
fn split(confirmation: Confirmation) -> (Confirmed, Option<Option<u64>>) {
    let (kind, message) = match confirmation {
        Confirmation::Ack(message) => (Confirmed::Ack, message),
        Confirmation::Nack(message) => (Confirmed::Nack, message),
        Confirmation::NotRequested => (Confirmed::Ack, None),
    };
    let returned = message.map(|message| {
        message
            .delivery
            .properties
            .message_id()
            .as_ref()
            .and_then(|id| id.as_str().parse::<u64>().ok())
    });
    (kind, returned)
}

fn outcome(confirmation: Confirmed, returned: bool) -> Result<Outcome, TransportError> {
    match confirmation {
        _ if returned => Ok(Outcome::Returned),
        Confirmed::Ack => Ok(Outcome::Routed),
        Confirmed::Nack => Err(TransportError::new(
            TransportErrorKind::Refused,
            "the broker could not take the message (publish nack)",
        )),
    }
}

/// A publish in flight on the lane, once its confirm (or failure) is in.
struct Done {
    id: u64,
    result: Result<Confirmation, lapin::Error>,
    done: oneshot::Sender<Result<Outcome, TransportError>>,
}

/// The lane: one task, one channel, many publishes in flight.
async fn run_lane(mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut channel: Option<(u64, Channel)> = None;
    let mut in_flight = FuturesUnordered::new();
    let mut returned: HashSet<u64> = HashSet::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                let generation = job.connected.generation;
                let usable = channel
                    .as_ref()
                    .is_some_and(|(current, open)| *current == generation && open.status().connected());
                if !usable {
                    match open_channel(&job.connected).await {
                        Ok(open) => channel = Some((generation, open)),
                        Err(error) => {
                            let _ = job.done.send(Err(error));
                            continue;
                        }
                    }
                }
                let Some((_, open)) = &channel else { continue };
                let open = open.clone();
                next_id += 1;
                let id = next_id;
                in_flight.push(async move {
                    let properties = job.properties.with_message_id(id.to_string().into());
                    let options = BasicPublishOptions { mandatory: job.mandatory, immediate: false };
                    let result = match open
                        .basic_publish(job.exchange, job.routing_key, options, &job.body, properties)
                        .await
                    {
                        Ok(confirm) => confirm.await,
                        Err(error) => Err(error),
                    };
                    Done { id, result, done: job.done }
                });
            }
            Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                // Everything confirmed by now: its returns come first.
                let mut batch = vec![first];
                while let Some(Some(more)) = in_flight.next().now_or_never() {
                    batch.push(more);
                }
                let batch: Vec<_> = batch
                    .into_iter()
                    .map(|Done { id, result, done }| {
                        let result = result.map(|confirmation| {
                            let (kind, carried) = split(confirmation);
                            returned.extend(carried.flatten());
                            kind
                        });
                        (id, result, done)
                    })
                    .collect();
                for (id, result, done) in batch {
                    let result = match result {
                        Ok(kind) => outcome(kind, returned.remove(&id)),
                        Err(error) if is_not_found(&error) => Ok(Outcome::NoExchange),
                        Err(error) => Err(from_lapin(error, "publishing")),
                    };
                    let _ = done.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn message(deadline: Option<Instant>) -> Message {
        Message {
            exchange: "openstack".into(),
            routing_key: "topic".into(),
            mandatory: true,
            body: Bytes::new(),
            properties: BasicProperties::default(),
            deadline,
        }
    }

    fn expiration(properties: &BasicProperties) -> Option<u64> {
        properties
            .expiration()
            .as_ref()
            .map(|expiration| expiration.as_str().parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn the_expiration_is_the_time_left_when_published() {
        let message = message(Some(Instant::now() + Duration::from_secs(10)));
        assert_eq!(expiration(&message.properties_now().unwrap()), Some(10_000));
        // Published later (after waiting for a reconnection, say): less time left.
        tokio::time::advance(Duration::from_millis(7_500)).await;
        assert_eq!(expiration(&message.properties_now().unwrap()), Some(2_500));
        // Past the deadline: not published at all.
        tokio::time::advance(Duration::from_secs(3)).await;
        let error = message.properties_now().unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Expired);
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_or_a_far_one_is_no_expiration() {
        assert_eq!(expiration(&message(None).properties_now().unwrap()), None);
        let far = message(Some(Instant::now() + Duration::from_secs(100 * 86_400)));
        assert_eq!(expiration(&far.properties_now().unwrap()), None);
    }
}
