//! Publishing with publisher confirms and mandatory routing, on the
//! publishing connection.
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
//! - **isolated publishes** (fanout casts, checking that an exchange exists,
//!   and publishes replayed after a channel error): one publish per channel
//!   at a time, from a small pool.
//!
//! A channel error (the broker closing the channel over one publish: a
//! missing exchange, a refused message) fails every publish in flight on
//! that channel. The lane therefore replays those publishes one by one on
//! isolated channels: the one that caused the error gets it, the others go
//! through. Before anything is sent: a body over `max_message_size` is
//! refused here (the broker would close the channel), a publish whose
//! caller gave up (its deadline passed, or its future was dropped) is
//! skipped, and while the broker blocks publishers (a resource alarm) a
//! publish waits for the block to lift. Every wait, the confirm's included,
//! ends at the message's deadline, or after `publish_timeout` for a message
//! without one (counted once connected when it retries for ever: see
//! [`Publisher::give_up_at`]).
//!
//! An exchange is checked once per connection (a passive declare) before
//! it is published to, and again after the broker closed the channel of
//! unconfirmed publishes (an exchange deleted since); a missing exchange
//! means no server ever listened there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

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
use crate::gone::GoneQueues;
use crate::link::{Connected, Link};
use crate::topology::short;
use crate::unconfirmed::Unconfirmed;

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
    #[cfg(test)]
    fn properties_now(&self) -> Result<BasicProperties, TransportError> {
        let expiration = self.expiration_now()?;
        Ok(with_expiration(self.properties.clone(), expiration))
    }

    /// The same, taken out of the message (no copy of its header table).
    fn take_properties_now(&mut self) -> Result<BasicProperties, TransportError> {
        let expiration = self.expiration_now()?;
        Ok(with_expiration(std::mem::take(&mut self.properties), expiration))
    }

    /// The expiration to publish with now, in milliseconds (`None`: none);
    /// `Err` when the deadline has passed.
    fn expiration_now(&self) -> Result<Option<u128>, TransportError> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        match deadline.saturating_duration_since(Instant::now()).as_millis() {
            0 => Err(expired()),
            left if left > MAX_EXPIRATION_MS => Ok(None),
            left => Ok(Some(left)),
        }
    }
}

fn with_expiration(properties: BasicProperties, expiration: Option<u128>) -> BasicProperties {
    match expiration {
        Some(millis) => properties.with_expiration(millis.to_string().into()),
        None => properties,
    }
}

fn expired() -> TransportError {
    TransportError::new(
        TransportErrorKind::Expired,
        "the caller's deadline passed before the message could be published",
    )
}

fn closed() -> TransportError {
    TransportError::new(TransportErrorKind::Closed, "the transport is closed")
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

/// How far a publish got, for the error when its time runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    Connecting = 0,
    Blocked = 1,
    Confirming = 2,
    /// An unconfirmed cast or reply, waiting for its frames to be written.
    Writing = 3,
}

/// Publishes on the transport's publishing connection.
pub(crate) struct Publisher {
    link: Arc<Link>,
    lane: mpsc::UnboundedSender<Job>,
    isolated: Arc<Isolated>,
    /// Exchanges known to exist on the current connection.
    exchanges: Mutex<Known>,
    /// One exchange check at a time: concurrent first publishes wait for it.
    checking: tokio::sync::Mutex<()>,
    max_message_size: usize,
    publish_timeout: Duration,
    /// Calls' requests, published without confirms.
    pub(crate) unconfirmed: Unconfirmed,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// Channels for one publish at a time.
struct Isolated {
    pool: Mutex<Pool>,
    /// Bounds the isolated channels in use.
    slots: Semaphore,
}

#[derive(Default)]
struct Pool {
    generation: u64,
    idle: Vec<Channel>,
}

#[derive(Default)]
struct Known {
    generation: u64,
    /// The unconfirmed channel's reopens when the names were checked: a
    /// channel the broker closed says an exchange may have gone.
    reopens: u64,
    names: HashSet<String>,
}

/// What an unconfirmed publish is, which decides how long it waits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UnconfirmedKind<'a> {
    /// The request of the call with this message id.
    Request { call_id: &'a str },
    /// A cast whose client opted out of confirms.
    Cast,
    /// A reply, from a transport configured without reply confirms
    /// (`confirm_replies=false`).
    Reply,
}

/// What to publish, as the lane keeps it (to replay it after a channel error).
#[derive(Clone)]
struct Publish {
    exchange: ShortString,
    routing_key: ShortString,
    mandatory: bool,
    body: Bytes,
    properties: BasicProperties,
}

/// A publish handed to the lane.
struct Job {
    connected: Arc<Connected>,
    /// Says when `connected` is lost: a wait on a lost connection ends then.
    link: Arc<Link>,
    publish: Publish,
    deadline: Instant,
    done: oneshot::Sender<Result<Outcome, TransportError>>,
}

impl Publisher {
    /// A publisher on `link`; unconfirmed replies found returned mark their
    /// queue in `gone`.
    pub(crate) fn new(link: Arc<Link>, config: &AmqpConfig, gone: Arc<GoneQueues>) -> Publisher {
        let isolated = Arc::new(Isolated {
            pool: Mutex::default(),
            slots: Semaphore::new(config.max_channels.max(1)),
        });
        let (lane, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(jobs));
        Publisher {
            link,
            lane,
            isolated,
            exchanges: Mutex::default(),
            checking: tokio::sync::Mutex::new(()),
            max_message_size: config.max_message_size,
            publish_timeout: config.publish_timeout,
            unconfirmed: Unconfirmed::new(gone),
        }
    }

    /// The connection publishes go through.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Refuses, before it reaches the broker, a body over the size limit.
    pub(crate) fn check_size(&self, message: &Message) -> Result<(), TransportError> {
        if message.body.len() > self.max_message_size {
            return Err(TransportError::new(
                TransportErrorKind::Refused,
                format!(
                    "the message is {} bytes, over the limit of {} bytes (max_message_size)",
                    message.body.len(),
                    self.max_message_size
                ),
            ));
        }
        Ok(())
    }

    /// When a publish of `deadline` gives up waiting: its deadline, or
    /// `publish_timeout` after now. A publish without a deadline that may
    /// retry for ever (a cast or a notification by default) first waits
    /// for a connection, as long as it takes, as oslo's do (`retry=None`):
    /// its `publish_timeout` then starts (an outage longer than it failed
    /// with `Unreachable` until 2026-12-05, and the message was not sent).
    pub(crate) async fn give_up_at(&self, deadline: Option<Instant>, retry: Retry) -> Result<Instant, TransportError> {
        if let Some(deadline) = deadline {
            return Ok(deadline);
        }
        if retry == Retry::Forever {
            self.link.connected(retry).await?;
        }
        Ok(Instant::now() + self.publish_timeout)
    }

    /// Publishes `message` on the lane and waits for the broker's confirm;
    /// first checks that its exchange exists. While the broker is
    /// unreachable, waits for a reconnection as `retry` allows. A publish
    /// interrupted by a connection loss is not repeated: it may have reached
    /// the broker.
    pub(crate) async fn publish(&self, message: Message, retry: Retry) -> Result<Outcome, TransportError> {
        self.check_size(&message)?;
        let give_up = self.give_up_at(message.deadline, retry).await?;
        let stage = AtomicU8::new(Stage::Connecting as u8);
        let publish = self.publish_on_lane(message, retry, give_up, &stage);
        self.within(give_up, &stage, publish).await
    }

    /// Runs `publish` until `give_up`; past it, the error says how far it got.
    ///
    /// A combinator, not an `async fn`: an `async fn` would hold `publish`
    /// twice (its argument, and inside the timeout), and a publish's future
    /// is large: every publish would copy it once more.
    fn within<'a>(
        &'a self,
        give_up: Instant,
        stage: &'a AtomicU8,
        publish: impl Future<Output = Result<Outcome, TransportError>> + 'a,
    ) -> impl Future<Output = Result<Outcome, TransportError>> + 'a {
        tokio::time::timeout_at(give_up, publish)
            .map(move |outcome| outcome.unwrap_or_else(|_| Err(timed_out(stage, self.link.blocked()))))
    }

    /// The connection to publish `message` on, once connected (as `retry`
    /// allows) and not blocked, and its exchange known to exist; `None`
    /// when the exchange does not exist.
    async fn ready_for(
        &self,
        message: &Message,
        retry: Retry,
        stage: &AtomicU8,
    ) -> Result<Option<Arc<Connected>>, TransportError> {
        let connected = self.connected(retry, stage).await?;
        let exchange = message.exchange.as_str();
        if !exchange.is_empty() && !self.exchange_exists(&connected, exchange).await? {
            return Ok(None);
        }
        Ok(Some(connected))
    }

    async fn publish_on_lane(
        &self,
        message: Message,
        retry: Retry,
        give_up: Instant,
        stage: &AtomicU8,
    ) -> Result<Outcome, TransportError> {
        let Some(connected) = self.ready_for(&message, retry, stage).await? else {
            return Ok(Outcome::NoExchange);
        };
        let mut message = message;
        let properties = message.take_properties_now()?;
        let (done, outcome) = oneshot::channel();
        let job = Job {
            connected: Arc::clone(&connected),
            link: Arc::clone(&self.link),
            publish: Publish {
                exchange: message.exchange,
                routing_key: message.routing_key,
                mandatory: message.mandatory,
                body: message.body,
                properties,
            },
            deadline: give_up,
            done,
        };
        stage.store(Stage::Confirming as u8, Ordering::Relaxed);
        self.lane.send(job).map_err(|_| closed())?;
        let outcome = outcome.await.map_err(|_| closed())?;
        if matches!(outcome, Ok(Outcome::NoExchange)) {
            // An exchange was deleted since we checked (rare): check again.
            self.known(&connected).names.clear();
        }
        outcome.map_err(|error| connection_error(&connected, error))
    }

    /// Publishes `message` without waiting for a confirm (see the
    /// `unconfirmed` module), on the channel of unconfirmed publishes:
    /// `Routed` means handed to the connection. Checks the exchange first,
    /// waits for a connection as `retry` allows and for a block to lift, as
    /// [`publish`](Publisher::publish) does.
    ///
    /// - The request of the call `call_id` (`Unconfirmed::Request`) goes out
    ///   with that message id, and the caller goes on to wait for its reply
    ///   without being woken once the frames are written (a failed write
    ///   loses the connection, which fails every waiting call); a return
    ///   fails the call later, through the reply sink. Each caller waits for
    ///   its reply, so what is queued stays bounded.
    /// - A cast or a reply (`Unconfirmed::Cast`, `Unconfirmed::Reply`)
    ///   returns once its frames are written to the socket: nothing waits
    ///   for it after, so the socket is what bounds how much a fast caster
    ///   (or a server answering many calls) keeps queued. A return is only
    ///   counted and logged.
    pub(crate) async fn publish_unconfirmed(
        &self,
        message: Message,
        kind: UnconfirmedKind<'_>,
        retry: Retry,
    ) -> Result<Outcome, TransportError> {
        self.check_size(&message)?;
        let give_up = self.give_up_at(message.deadline, retry).await?;
        let stage = AtomicU8::new(Stage::Connecting as u8);
        let publish = async {
            let reopens = self.unconfirmed.reopens();
            let Some(connected) = self.ready_for(&message, retry, &stage).await? else {
                return Ok(Outcome::NoExchange);
            };
            let lane = self.unconfirmed.channel(&connected).await?;
            if self.unconfirmed.reopens() != reopens {
                // The broker closed the channel meanwhile: an exchange was
                // most likely deleted since it was checked. Check again (the
                // names known are forgotten), or every message to it would
                // close the channel anew.
                let exchange = message.exchange.as_str();
                if !exchange.is_empty() && !self.exchange_exists(&connected, exchange).await? {
                    return Ok(Outcome::NoExchange);
                }
            }
            // From here the message may reach the broker.
            stage.store(Stage::Confirming as u8, Ordering::Relaxed);
            let mut message = message;
            let mut properties = message.take_properties_now()?;
            if let UnconfirmedKind::Request { call_id } = kind {
                properties = properties.with_message_id(call_id.into());
            }
            let options = BasicPublishOptions {
                mandatory: message.mandatory,
                immediate: false,
            };
            let publish = lane.channel.basic_publish(
                message.exchange,
                message.routing_key,
                options,
                &message.body,
                properties,
            );
            let written = match kind {
                // The first poll hands the frames to lapin's I/O loop.
                UnconfirmedKind::Request { call_id } => {
                    let written = publish.now_or_never().map_or(Ok(()), |written| written.map(drop));
                    if written.is_ok() {
                        lane.sent(self.unconfirmed.counts());
                        // Marked sent, then the connection checked: a loss
                        // noticed before the mark (which then failed no
                        // such call) is seen here, by the link or by the
                        // connection's status (the reply consumer may end
                        // on it first); one after it fails the call with
                        // the others.
                        self.unconfirmed.request_sent(call_id);
                        if self.link.is_lost(connected.generation) || !connected.connection.status().connected() {
                            return Err(TransportError::new(
                                TransportErrorKind::ConnectionLost,
                                "the connection was lost as the request went out: it may not have reached the broker",
                            ));
                        }
                    }
                    written
                }
                UnconfirmedKind::Cast | UnconfirmedKind::Reply => {
                    // Counted, and the watcher woken, before the wait: a
                    // cast whose wait is cut short may still go out.
                    lane.sent(self.unconfirmed.counts());
                    stage.store(Stage::Writing as u8, Ordering::Relaxed);
                    publish.await.map(drop)
                }
            };
            if let Err(error) = written {
                return Err(connection_error(&connected, from_lapin(error, "publishing")));
            }
            Ok(Outcome::Routed)
        };
        self.within(give_up, &stage, publish).await
    }

    /// The connection, once connected (as `retry` allows) and not blocked.
    async fn connected(&self, retry: Retry, stage: &AtomicU8) -> Result<Arc<Connected>, TransportError> {
        let connected = self.link.connected(retry).await?;
        if self.link.blocked().is_some() {
            stage.store(Stage::Blocked as u8, Ordering::Relaxed);
            self.link.unblocked().await;
            return self.link.connected(retry).await;
        }
        Ok(connected)
    }

    /// Publishes `message` alone on a channel of its own: for publishes that
    /// may close their channel (an auto-delete exchange may vanish).
    pub(crate) async fn publish_isolated(&self, message: Message, retry: Retry) -> Result<Outcome, TransportError> {
        self.check_size(&message)?;
        let give_up = self.give_up_at(message.deadline, retry).await?;
        let stage = AtomicU8::new(Stage::Connecting as u8);
        let publish = async {
            let _slot = self.isolated.slots.acquire().await.map_err(|_| closed())?;
            let connected = self.connected(retry, &stage).await?;
            let mut message = message;
            let publish = Publish {
                properties: message.take_properties_now()?,
                exchange: message.exchange,
                routing_key: message.routing_key,
                mandatory: message.mandatory,
                body: message.body,
            };
            stage.store(Stage::Confirming as u8, Ordering::Relaxed);
            self.isolated.publish_one(&connected, &publish).await
        };
        self.within(give_up, &stage, publish).await
    }

    fn known(&self, connected: &Connected) -> MutexGuard<'_, Known> {
        let mut known = self.exchanges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let reopens = self.unconfirmed.reopens();
        if known.generation != connected.generation || known.reopens != reopens {
            *known = Known {
                generation: connected.generation,
                reopens,
                ..Known::default()
            };
        }
        known
    }

    /// Whether `exchange` exists, checked once per connection, and again
    /// after the broker closed the channel of unconfirmed publishes.
    async fn exchange_exists(&self, connected: &Connected, exchange: &str) -> Result<bool, TransportError> {
        if self.known(connected).names.contains(exchange) {
            return Ok(true);
        }
        let _checking = self.checking.lock().await;
        if self.known(connected).names.contains(exchange) {
            return Ok(true);
        }
        let channel = self.isolated.channel(connected).await?;
        let options = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        match channel
            .exchange_declare(short(exchange)?, ExchangeKind::Topic, options, FieldTable::default())
            .await
        {
            Ok(()) => {
                self.isolated.release(connected, channel);
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
}

/// Why a message that had not reached the lane yet (waiting for a
/// connection, or for the broker to lift a block) was not sent in time.
pub(crate) fn not_sent_in_time(blocked: Option<Arc<str>>) -> TransportError {
    let stage = if blocked.is_some() {
        Stage::Blocked
    } else {
        Stage::Connecting
    };
    timed_out(&AtomicU8::new(stage as u8), blocked)
}

/// The error of a publish whose time ran out at `stage`.
fn timed_out(stage: &AtomicU8, blocked: Option<Arc<str>>) -> TransportError {
    match stage.load(Ordering::Relaxed) {
        stage if stage == Stage::Blocked as u8 => TransportError::new(
            TransportErrorKind::Blocked,
            format!(
                "the broker blocks publishers ({}) and did not lift the block in time; the message was not sent",
                blocked.as_deref().unwrap_or("a resource alarm")
            ),
        ),
        stage if stage == Stage::Confirming as u8 => TransportError::new(
            TransportErrorKind::Unconfirmed,
            "the broker did not confirm the message in time: it may or may not have been routed",
        ),
        stage if stage == Stage::Writing as u8 => TransportError::new(
            TransportErrorKind::Unconfirmed,
            "the connection did not take the message in time (is the broker blocking it?): it may still be sent",
        ),
        _ => TransportError::new(
            TransportErrorKind::Unreachable,
            "the broker was unreachable until the message's time ran out",
        ),
    }
}

impl Isolated {
    fn pool(&self, connected: &Connected) -> MutexGuard<'_, Pool> {
        let mut pool = self.pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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

    /// Publishes one message on a channel of its own and waits for its confirm.
    async fn publish_one(&self, connected: &Connected, publish: &Publish) -> Result<Outcome, TransportError> {
        let channel = self.channel(connected).await?;
        let outcome = publish_on(connected, &channel, publish).await;
        if !matches!(outcome, Err(ref error) if error.kind() == TransportErrorKind::Refused) {
            self.release(connected, channel);
        }
        outcome
    }
}

/// Publishes one message on `channel` and waits for its confirm.
async fn publish_on(connected: &Connected, channel: &Channel, publish: &Publish) -> Result<Outcome, TransportError> {
    let options = BasicPublishOptions {
        mandatory: publish.mandatory,
        immediate: false,
    };
    let published = async {
        let confirm = channel
            .basic_publish(
                publish.exchange.clone(),
                publish.routing_key.clone(),
                options,
                &publish.body,
                publish.properties.clone(),
            )
            .await
            .map_err(|error| from_lapin(error, "publishing"))?;
        Ok::<_, TransportError>(confirm.await)
    }
    .await;
    match published {
        Ok(Ok(confirmation)) => {
            let (kind, returned) = split(&confirmation);
            outcome(kind, returned.is_some())
        }
        // The broker closes the channel of a publish to a missing exchange.
        Ok(Err(error)) if is_not_found(&error) => Ok(Outcome::NoExchange),
        Ok(Err(error)) => Err(connection_error(
            connected,
            from_lapin(error, "waiting for the publish confirm"),
        )),
        Err(error) => Err(connection_error(connected, error)),
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
pub(crate) fn connection_error(connected: &Connected, error: TransportError) -> TransportError {
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
fn split(confirmation: &Confirmation) -> (Confirmed, Option<Option<u64>>) {
    let (kind, message) = match confirmation {
        Confirmation::Ack(message) => (Confirmed::Ack, message.as_ref()),
        Confirmation::Nack(message) => (Confirmed::Nack, message.as_ref()),
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
        )
        .with_source(Nacked)),
    }
}

/// The source of a publish nack's error: the broker could not take the
/// message (a quorum queue between leaders), which may pass, unlike a
/// refusal that closed the channel (a message over the broker's size limit,
/// a permission), which comes again however often the message is sent.
#[derive(Debug)]
pub(crate) struct Nacked;

impl std::fmt::Display for Nacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("publish nack")
    }
}

impl std::error::Error for Nacked {}

/// The error of a publish nack, as the lane and lone publishes report it.
#[cfg(test)]
pub(crate) fn outcome_of_nack() -> TransportError {
    outcome(Confirmed::Nack, false).expect_err("a nack is an error")
}

/// Whether `error` is a publish nack.
pub(crate) fn is_nack(error: &TransportError) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<Nacked>())
}

/// A publish in flight on the lane, once its confirm (or failure) is in.
struct Done {
    id: u64,
    job: Job,
    result: Result<Confirmation, lapin::Error>,
}

/// The lane: one task, one channel, many publishes in flight.
async fn run_lane(mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut channel: Option<(u64, Channel)> = None;
    let mut in_flight = FuturesUnordered::new();
    let mut returned: HashSet<u64> = HashSet::new();
    let mut next_id: u64 = 0;
    // Kept across batches: a batch of 64 confirms would otherwise grow a
    // new vector of large entries, reallocating and copying them, each time.
    let mut batch: Vec<Done> = Vec::new();
    let drain = Drain::default();
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                // Nobody waits any more: do not send it.
                if job.done.is_closed() {
                    continue;
                }
                if job.deadline <= Instant::now() {
                    let _ = job.done.send(Err(expired()));
                    continue;
                }
                let generation = job.connected.generation;
                let usable = channel
                    .as_ref()
                    .is_some_and(|(current, open)| *current == generation && open.status().connected());
                if !usable {
                    match until_lost(&job, open_channel(&job.connected)).await {
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
                    let publish = &job.publish;
                    let properties = publish.properties.clone().with_message_id(id.to_string().into());
                    let options = BasicPublishOptions { mandatory: publish.mandatory, immediate: false };
                    let result = match open
                        .basic_publish(publish.exchange.clone(), publish.routing_key.clone(), options, &publish.body, properties)
                        .await
                    {
                        Ok(confirm) => confirm.await,
                        Err(error) => Err(error),
                    };
                    Done { id, job, result }
                });
            }
            Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                // Everything confirmed by now: its returns come first.
                batch.push(first);
                drain.ready(&mut in_flight, &mut batch);
                for done in &batch {
                    if let Ok(confirmation) = &done.result {
                        if let (_, Some(Some(id))) = split(confirmation) {
                            returned.insert(id);
                        }
                    }
                }
                let mut replay = Vec::new();
                for Done { id, job, result } in batch.drain(..) {
                    match result {
                        // The broker did not take it: nothing was routed, so
                        // it is safe to publish again, on a fresh channel (a
                        // channel whose quorum queue changed leader may keep
                        // refusing).
                        Ok(confirmation) if split(&confirmation).0 == Confirmed::Nack && !returned.contains(&id) => {
                            channel = None;
                            replay.push(job);
                        }
                        Ok(confirmation) => {
                            let (kind, _) = split(&confirmation);
                            let _ = job.done.send(outcome(kind, returned.remove(&id)));
                        }
                        // The channel was closed under it while the connection
                        // stands: maybe another publish's fault. Replay alone.
                        Err(_) if job.connected.connection.status().connected() => {
                            returned.remove(&id);
                            replay.push(job);
                        }
                        Err(error) => {
                            returned.remove(&id);
                            let _ = job.done.send(Err(from_lapin(error, "publishing")));
                        }
                    }
                }
                if !replay.is_empty() {
                    tracing::info!(publishes = replay.len(), "a channel error or a refusal: publishing the messages again, one by one, on a fresh channel");
                    tokio::spawn(replay_alone(replay));
                }
            }
        }
    }
}

/// Takes every output `in_flight` has ready now into a batch, in the order
/// the futures were woken.
///
/// A publish's return rides on whichever confirm lapin resolves first once
/// it came, maybe another publish's, resolved before the returned one: a
/// batch must hold that confirm too, or the returned publish is answered
/// `Routed` (and its id stays in the lane's `returned` for good).
/// `FuturesUnordered` may stop before its ready futures are all taken:
/// after polling two futures that woke themselves meanwhile (a publish
/// whose frames the I/O loop wrote during its poll), or all of them, it
/// wakes its task and says `Pending`. Only a `Pending` without that wake
/// ends the batch, or as many with it as there are futures (each polls
/// at least one, so the futures ready at the start are all reached, and
/// futures that wake themselves at every poll cannot hold the lane).
/// (What is woken meanwhile waits for the lane's next poll of `in_flight`,
/// with its own waker, which comes before the lane waits.) Made once per
/// lane: its waker serves every batch.
struct Drain {
    flag: Arc<WokenFlag>,
    waker: Waker,
}

impl Default for Drain {
    fn default() -> Drain {
        let flag = Arc::new(WokenFlag::default());
        let waker = Waker::from(Arc::clone(&flag));
        Drain { flag, waker }
    }
}

impl Drain {
    fn ready<F: Future>(&self, in_flight: &mut FuturesUnordered<F>, batch: &mut Vec<F::Output>) {
        let mut cx = Context::from_waker(&self.waker);
        let mut rounds_left = in_flight.len();
        loop {
            self.flag.woken.store(false, Ordering::Relaxed);
            match in_flight.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(output)) => batch.push(output),
                Poll::Pending if self.flag.woken.load(Ordering::Relaxed) && rounds_left > 0 => rounds_left -= 1,
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
    }
}

/// A waker that only notes it was woken.
#[derive(Default)]
struct WokenFlag {
    woken: AtomicBool,
}

impl Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
    }
}

/// Publishes again, one at a time and in order, on a fresh channel, the
/// publishes a channel error interrupted or the broker refused: the one that
/// caused a channel error gets it, alone; a refusal repeated is reported.
async fn replay_alone(jobs: Vec<Job>) {
    for job in jobs {
        if job.done.is_closed() {
            continue;
        }
        let publish = async {
            let channel = open_channel(&job.connected).await?;
            let result = publish_on(&job.connected, &channel, &job.publish).await;
            // Closed behind the answer, as lapin closes a channel whose last
            // handle goes: awaiting the close held a known result back, for
            // ever while the broker blocks publishers (it then failed as
            // unconfirmed at its deadline).
            drop(channel);
            result
        };
        let result = match tokio::time::timeout_at(job.deadline, until_lost(&job, publish)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Unconfirmed,
                "the broker did not confirm the message in time: it may or may not have been routed",
            )),
        };
        let _ = job.done.send(result);
    }
}

/// Runs `work` on the job's connection until it ends, or until that
/// connection is lost: a channel opened or a frame queued on a connection
/// whose I/O loop has already stopped would wait for nothing until the
/// job's deadline (a cast cut off by a lost connection then failed after
/// its whole `publish_timeout` as unconfirmed, instead of at once as lost).
async fn until_lost<T>(job: &Job, work: impl Future<Output = Result<T, TransportError>>) -> Result<T, TransportError> {
    tokio::select! {
        result = work => result,
        () = job.link.lost(job.connected.generation) => Err(TransportError::new(
            TransportErrorKind::ConnectionLost,
            "the connection was lost while publishing: the message may have reached the broker",
        )),
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

    /// Pending at every poll, having woken itself: as a publish whose
    /// frames the I/O loop wrote while it was polled looks to
    /// `FuturesUnordered`, twice in a row.
    fn wakes_itself() -> futures_util::future::BoxFuture<'static, u32> {
        Box::pin(std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::Pending
        }))
    }

    #[test]
    fn a_batch_takes_every_confirmation_ready_past_futures_that_woke_themselves() {
        let mut in_flight = FuturesUnordered::new();
        in_flight.push(Box::pin(std::future::ready(1_u32)) as futures_util::future::BoxFuture<'static, u32>);
        in_flight.push(wakes_itself());
        in_flight.push(wakes_itself());
        // Ready behind them: the confirm a return may ride on.
        in_flight.push(Box::pin(std::future::ready(2_u32)));
        let mut batch = Vec::new();
        Drain::default().ready(&mut in_flight, &mut batch);
        assert_eq!(batch, [1, 2]);
        assert_eq!(in_flight.len(), 2, "those that woke themselves stay, pending");
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
