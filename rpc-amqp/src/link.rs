//! A supervised connection to the broker: connects, notices losses, and
//! reconnects with backoff and jitter, moving through the URL's hosts.
//!
//! lapin's own recovery is left off: it can hang (an exhausted backoff, a
//! silently dead socket) and delays failures until it reconnects. Here a loss
//! is visible at once: the state goes `Down`, users of the old connection
//! fail, and a fresh connection replaces it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties, Event};
use rpc_core::transport::Retry;
use rpc_core::{TransportError, TransportErrorKind};
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::config::{AmqpConfig, FailoverStrategy, Host, TlsConfig};
use crate::error::from_lapin;

/// A live connection and its generation (which grows at every reconnection).
pub(crate) struct Connected {
    pub(crate) connection: Connection,
    pub(crate) generation: u64,
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
enum State {
    Up(Arc<Connected>),
    /// Reconnecting: `attempts` failed so far in this outage.
    Down {
        attempts: u64,
        error: Arc<str>,
    },
    Closed,
}

/// The nodes in the order to try them, and the TLS material, read once.
struct Plan {
    role: &'static str,
    config: Arc<AmqpConfig>,
    hosts: Vec<Host>,
    tls: Option<OwnedTLSConfig>,
    properties: ConnectionProperties,
}

/// A supervised connection. Dropping it closes the connection.
pub(crate) struct Link {
    role: &'static str,
    state: watch::Sender<State>,
    /// Why the broker blocks this connection's publishers (a resource
    /// alarm), while it does.
    blocked: watch::Sender<Option<Arc<str>>>,
    reconnections: Arc<AtomicU64>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.role)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl Link {
    /// Connects and starts supervising the connection. The first connection
    /// tries the hosts in turn with the reconnection backoff, for at most
    /// `patience` (the configuration's `startup_timeout` for a transport's
    /// first connection; zero: each host once); a refusal (bad credentials,
    /// say) fails at once.
    pub(crate) async fn open(
        config: Arc<AmqpConfig>,
        role: &'static str,
        patience: Duration,
    ) -> Result<Arc<Link>, TransportError> {
        let plan = Plan::new(Arc::clone(&config), role)?;
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff = Backoff::new(config.retry_interval, config.max_retry_interval);
        let mut index = 0;
        let mut attempts = 0;
        // Whether some host of the current round may yet answer.
        let mut round_may_answer = false;
        loop {
            match plan.connect(index).await {
                Ok(connection) => {
                    let connected = Arc::new(Connected {
                        connection,
                        generation: 0,
                    });
                    let (state, _) = watch::channel(State::Up(Arc::clone(&connected)));
                    let (blocked, _) = watch::channel(None);
                    let link = Arc::new(Link {
                        role,
                        state,
                        blocked,
                        reconnections: Arc::default(),
                    });
                    let supervisor = Supervisor {
                        state: link.state.clone(),
                        blocked: link.blocked.clone(),
                        reconnections: Arc::clone(&link.reconnections),
                    };
                    tokio::spawn(supervise(plan, index, connected, supervisor));
                    return Ok(link);
                }
                Err(ConnectError { error, retry }) => {
                    attempts += 1;
                    round_may_answer |= retry;
                    let host = &plan.hosts[index].host;
                    index = (index + 1) % plan.hosts.len();
                    let round_over = index == 0;
                    if round_over && !round_may_answer {
                        // Every host answered, and refused: trying again cannot help.
                        tracing::warn!(role, %host, attempts, %error, "cannot connect; giving up");
                        return Err(error);
                    }
                    if !round_over {
                        tracing::warn!(role, %host, attempts, %error, "cannot connect; trying the next host");
                        continue;
                    }
                    round_may_answer = false;
                    let delay = backoff.next_delay();
                    if tokio::time::Instant::now() + delay >= deadline {
                        tracing::warn!(role, %host, attempts, %error, "cannot connect; giving up");
                        return Err(error);
                    }
                    tracing::warn!(role, %host, attempts, %error, "cannot connect; trying again");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// How many times the connection was re-established.
    pub(crate) fn reconnections(&self) -> u64 {
        self.reconnections.load(Ordering::Relaxed)
    }

    /// Why the broker blocks this connection's publishers, while it does.
    pub(crate) fn blocked(&self) -> Option<Arc<str>> {
        self.blocked.borrow().clone()
    }

    /// Resolves once the broker does not block this connection's publishers.
    pub(crate) async fn unblocked(&self) {
        let mut blocked = self.blocked.subscribe();
        let _ = blocked.wait_for(Option::is_none).await;
    }

    /// The current connection, waiting for a reconnection as `retry` allows.
    pub(crate) async fn connected(&self, retry: Retry) -> Result<Arc<Connected>, TransportError> {
        let mut state = self.state.subscribe();
        let mut first_attempt = None;
        loop {
            match &*state.borrow_and_update() {
                // Failed, and the supervisor is about to notice: wait for
                // the next connection rather than fail on this one.
                State::Up(connected) if failed(&connected.connection) => {
                    if matches!(retry, Retry::Never) {
                        return Err(TransportError::new(
                            TransportErrorKind::ConnectionLost,
                            "the connection to the broker was just lost",
                        ));
                    }
                }
                State::Up(connected) => return Ok(Arc::clone(connected)),
                State::Closed => return Err(closed()),
                State::Down { attempts, error } => {
                    let first = *first_attempt.get_or_insert(*attempts);
                    let exhausted = match retry {
                        Retry::Never => true,
                        Retry::Limited(retries) => attempts.saturating_sub(first) >= u64::from(retries),
                        Retry::Forever => false,
                    };
                    if exhausted {
                        return Err(TransportError::new(
                            TransportErrorKind::Unreachable,
                            format!("the broker is unreachable: {error}"),
                        ));
                    }
                }
            }
            if state.changed().await.is_err() {
                return Err(closed());
            }
        }
    }

    /// Resolves once the connection of `generation` is gone.
    pub(crate) async fn lost(&self, generation: u64) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|state| gone(state, generation)).await;
    }

    /// Whether the connection of `generation` is gone now: what
    /// [`lost`](Link::lost) waits for, read without waiting.
    pub(crate) fn is_lost(&self, generation: u64) -> bool {
        gone(&self.state.borrow(), generation)
    }

    /// Whether the connection is up right now.
    pub(crate) fn is_up(&self) -> bool {
        matches!(&*self.state.borrow(), State::Up(connected) if !failed(&connected.connection))
    }

    /// Whether the link is closed for good.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(*self.state.borrow(), State::Closed)
    }

    /// Closes the connection; users fail from now on.
    pub(crate) fn close(&self) {
        self.state.send_replace(State::Closed);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> TransportError {
    TransportError::new(TransportErrorKind::Closed, "the transport is closed")
}

/// Whether `state` is past the connection of `generation`.
fn gone(state: &State, generation: u64) -> bool {
    !matches!(state, State::Up(connected) if connected.generation == generation)
}

/// What the supervisor task updates.
struct Supervisor {
    state: watch::Sender<State>,
    blocked: watch::Sender<Option<Arc<str>>>,
    reconnections: Arc<AtomicU64>,
}

async fn supervise(plan: Plan, mut host: usize, mut connected: Arc<Connected>, supervisor: Supervisor) {
    let Supervisor {
        state,
        blocked,
        reconnections,
    } = supervisor;
    let role = plan.role;
    let mut backoff = Backoff::new(plan.config.retry_interval, plan.config.max_retry_interval);
    let mut closed = state.subscribe();
    let mut up_since = tokio::time::Instant::now();
    loop {
        // Up: wait for the connection to fail, or for the link to close.
        let error = tokio::select! {
            error = watch_connection(&connected.connection, &blocked) => error,
            () = closing(&mut closed) => {
                let _ = connected.connection.close(200, "closing".into()).await;
                return;
            }
        };
        tracing::warn!(role, %error, "connection lost; reconnecting");
        // A new connection starts unblocked.
        blocked.send_replace(None);
        let generation = connected.generation;
        drop(connected);
        let down = State::Down {
            attempts: 0,
            error: error.to_string().into(),
        };
        if !advance(&state, down) {
            return;
        }
        backoff.connection_lost(up_since.elapsed());
        // Down: try the next hosts in turn until one answers.
        let mut attempts = 0u64;
        connected = loop {
            let delay = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = closing(&mut closed) => return,
            }
            host = (host + 1) % plan.hosts.len();
            match plan.connect(host).await {
                Ok(connection) => {
                    tracing::info!(role, host = %plan.hosts[host].host, attempts, "reconnected");
                    reconnections.fetch_add(1, Ordering::Relaxed);
                    rpc_core::metrics::reconnected("amqp");
                    break Arc::new(Connected {
                        connection,
                        generation: generation + 1,
                    });
                }
                Err(ConnectError { error, .. }) => {
                    attempts += 1;
                    tracing::warn!(role, host = %plan.hosts[host].host, attempts, %error, "reconnection failed");
                    let outage = State::Down {
                        attempts,
                        error: error.to_string().into(),
                    };
                    if !advance(&state, outage) {
                        return;
                    }
                }
            }
        };
        if !advance(&state, State::Up(Arc::clone(&connected))) {
            let _ = connected.connection.close(200, "closing".into()).await;
            return;
        }
        up_since = tokio::time::Instant::now();
    }
}

/// Whether `connection` ended in an error or was closed.
fn failed(connection: &Connection) -> bool {
    let status = connection.status();
    status.errored() || status.closed()
}

/// Resolves once the link is closed.
async fn closing(state: &mut watch::Receiver<State>) {
    let _ = state.wait_for(|state| matches!(state, State::Closed)).await;
}

/// Moves the link to `next`, unless it was closed meanwhile (a connection
/// attempt does not watch for the close): closed stays closed, and the
/// supervisor stops. Whether it moved.
fn advance(state: &watch::Sender<State>, next: State) -> bool {
    let mut open = true;
    state.send_if_modified(|current| {
        if matches!(current, State::Closed) {
            open = false;
            return false;
        }
        *current = next;
        true
    });
    open
}

/// Resolves with the error that ended the connection; meanwhile records
/// when the broker blocks and unblocks its publishers.
async fn watch_connection(connection: &Connection, blocked: &watch::Sender<Option<Arc<str>>>) -> TransportError {
    let mut events = Box::pin(connection.events_listener());
    // The listener may have been created after an early failure: poll the
    // status too.
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = events.next() => match event {
                // lapin reports a channel closed by the broker (a publish to a
                // missing exchange, say) here too: only a failed connection counts.
                Some(Event::Error(error)) => {
                    if failed(connection) {
                        return from_lapin(error, "connection");
                    }
                    tracing::debug!(%error, "the broker closed a channel; the connection stays");
                }
                Some(Event::ConnectionBlocked(reason)) => {
                    tracing::warn!(%reason, "the broker blocks publishers (a resource alarm)");
                    blocked.send_replace(Some(reason.as_str().into()));
                }
                Some(Event::ConnectionUnblocked) => {
                    tracing::info!("the broker unblocked publishers");
                    blocked.send_replace(None);
                }
                Some(_) => {}
                None => return TransportError::new(TransportErrorKind::ConnectionLost, "the connection ended"),
            },
            _ = ticks.tick() => {
                if failed(connection) {
                    return TransportError::new(TransportErrorKind::ConnectionLost, "the connection failed");
                }
            }
        }
    }
}

impl Plan {
    fn new(config: Arc<AmqpConfig>, role: &'static str) -> Result<Plan, TransportError> {
        let mut hosts = config.hosts.clone();
        if config.failover == FailoverStrategy::Shuffle {
            fastrand::shuffle(&mut hosts);
        }
        let tls = config.tls.as_ref().map(read_tls).transpose()?;
        let name = match &config.connection_name {
            Some(name) => format!("{name}:{role}"),
            None => {
                let program = std::env::args()
                    .next()
                    .and_then(|path| path.rsplit('/').next().map(str::to_owned))
                    .unwrap_or_else(|| "rpc".to_owned());
                format!("{program}:{}:{role}", std::process::id())
            }
        };
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        Ok(Plan {
            role,
            config,
            hosts,
            tls,
            properties,
        })
    }

    async fn connect(&self, index: usize) -> Result<Connection, ConnectError> {
        let host = &self.hosts[index];
        let config = &self.config;
        let uri = AMQPUri {
            scheme: if self.tls.is_some() {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: host.username.clone(),
                    password: host.password().to_owned(),
                },
                host: host.host.clone(),
                port: host.port,
            },
            vhost: config.vhost.clone(),
            query: AMQPQueryString {
                heartbeat: (config.heartbeat > 0).then_some(config.heartbeat),
                ..AMQPQueryString::default()
            },
        };
        let where_to = format!("connecting to {}:{}", host.host, host.port);
        let tls = self.tls.clone().unwrap_or_default();
        match crate::attempt::connect(uri, tls, self.properties.clone(), config.connect_timeout).await {
            Some(Ok(connection)) => Ok(connection),
            Some(Err(error)) => {
                let absent = broker_absent(&error);
                let error = from_lapin(error, &where_to);
                let kind = match error.kind() {
                    TransportErrorKind::Refused => TransportErrorKind::Refused,
                    _ => TransportErrorKind::Unreachable,
                };
                Err(ConnectError {
                    error: TransportError::new(kind, error.message().to_owned()).with_source(error),
                    retry: absent,
                })
            }
            None => Err(ConnectError {
                error: TransportError::new(
                    TransportErrorKind::Unreachable,
                    format!("{where_to}: no answer within {:?}", config.connect_timeout),
                ),
                retry: true,
            }),
        }
    }
}

/// Why a connection attempt failed, and whether the broker simply is not
/// there (yet): worth trying again at start-up. A broker that answers and
/// refuses (credentials, TLS, a protocol mismatch) is not.
pub(crate) struct ConnectError {
    error: TransportError,
    retry: bool,
}

impl From<ConnectError> for TransportError {
    fn from(error: ConnectError) -> TransportError {
        error.error
    }
}

/// Whether `error` says nothing answers at the address.
fn broker_absent(error: &lapin::Error) -> bool {
    use std::io::ErrorKind;
    match error.kind() {
        lapin::ErrorKind::IOError(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::TimedOut
                | ErrorKind::NotConnected
                | ErrorKind::AddrNotAvailable
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
        ),
        _ => false,
    }
}

fn read_tls(tls: &TlsConfig) -> Result<OwnedTLSConfig, TransportError> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|error| {
            TransportError::new(
                TransportErrorKind::Other,
                format!("cannot read the {what} `{}`: {error}", path.display()),
            )
        })
    };
    let cert_chain = match &tls.ca_file {
        None => None,
        Some(path) => {
            let pem = String::from_utf8(read(path, "CA file (ssl_ca_file)")?).unwrap_or_default();
            // lapin silently ignores a chain it cannot parse: refuse it here instead.
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("the CA file `{}` holds no PEM certificate", path.display()),
                ));
            }
            Some(pem)
        }
    };
    let identity = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read(cert, "certificate file (ssl_cert_file)")?,
            key: read(key, "key file (ssl_key_file)")?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig { identity, cert_chain })
}
