//! One connection attempt, which can be given up.
//!
//! lapin runs a connection's handshake on its own I/O thread, and that
//! thread owns the socket: dropping the future that waits for the handshake
//! leaves the thread and its socket behind, waiting for a broker that may
//! never answer (a host that accepts and says nothing, a frozen broker). An
//! attempt here keeps a second handle on its socket while the handshake
//! runs, so that giving up (`connect_timeout`) shuts the socket: lapin's
//! thread then fails the handshake and ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::tcp::{AMQPUriTcpExt, AsyncTcpStream, OwnedTLSConfig, TLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};
use tokio::sync::watch;

/// Connects to `uri` (over TLS with `tls` for `amqps`), for at most
/// `timeout`: `None` when the attempt took longer, and was given up.
pub(crate) async fn connect(
    uri: AMQPUri,
    tls: OwnedTLSConfig,
    properties: ConnectionProperties,
    timeout: Duration,
) -> Option<lapin::Result<Connection>> {
    let runtime = match lapin::runtime::default_runtime() {
        Ok(runtime) => runtime,
        Err(error) => return Some(Err(error)),
    };
    let socket = Arc::new(Socket::new());
    // Given up too when this future is dropped (a timeout around the
    // transport's start, say) before the attempt ends.
    let attempt = Attempt(Arc::clone(&socket));
    // lapin calls this on its I/O thread, once per attempt.
    let open = async move |uri: AMQPUri, runtime: async_rs::TokioRuntime| {
        let mut plain = uri.clone();
        plain.scheme = AMQPScheme::AMQP;
        let stream = tokio::select! {
            stream = plain.connect_with_config_async(TLSConfig::default(), &runtime) => stream?,
            () = socket.given_up() => return Err(given_up()),
        };
        socket.hold(handle_of(&stream))?;
        match uri.scheme {
            AMQPScheme::AMQPS => Ok(stream.into_tls(&uri.authority.host, tls.as_ref()).await?),
            AMQPScheme::AMQP => Ok(stream),
        }
    };
    let connection = tokio::time::timeout(timeout, Connection::connector(uri, runtime, open, properties))
        .await
        .ok();
    attempt.end(connection.is_some());
    connection
}

/// A second handle on the socket lapin just opened (on Unix), to shut it
/// with; without one (it could not be duplicated: out of descriptors), a
/// given-up attempt is left to lapin, as before.
fn handle_of(stream: &AsyncTcpStream<<async_rs::Tokio as async_rs::traits::Reactor>::TcpStream>) -> Option<Handle> {
    #[cfg(unix)]
    if let AsyncTcpStream::Plain(plain) = stream {
        use std::os::fd::AsFd;
        return match plain.get_ref().as_fd().try_clone_to_owned() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::debug!(%error, "cannot hold a connection attempt's socket");
                None
            }
        };
    }
    #[cfg(not(unix))]
    let _ = stream;
    None
}

/// Gives the attempt up when dropped before it ended.
struct Attempt(Arc<Socket>);

impl Attempt {
    /// The attempt ended: it connected or failed (`settled`), or took too
    /// long.
    fn end(self, settled: bool) {
        if settled {
            self.0.settle();
        }
        // Dropped: given up, unless settled.
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.give_up();
    }
}

/// The attempt's socket, seen from outside lapin's I/O thread.
struct Socket {
    held: Mutex<Held>,
    given_up: watch::Sender<bool>,
}

enum Held {
    /// The handshake runs (on this socket, once connected).
    Connecting(Option<Handle>),
    /// The attempt ended, one way or the other: lapin's alone from now on.
    Settled,
    /// Given up: the socket is shut, and no other may open.
    GivenUp,
}

#[cfg(unix)]
type Handle = std::os::fd::OwnedFd;
#[cfg(not(unix))]
type Handle = std::convert::Infallible;

impl Socket {
    fn new() -> Socket {
        Socket {
            held: Mutex::new(Held::Connecting(None)),
            given_up: watch::channel(false).0,
        }
    }

    /// Keeps a handle on the socket lapin just opened, unless the attempt
    /// was given up meanwhile (the socket is then dropped at once).
    fn hold(&self, handle: Option<Handle>) -> lapin::Result<()> {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &mut *held {
            Held::Connecting(slot) => *slot = handle,
            Held::Settled => {}
            Held::GivenUp => return Err(given_up()),
        }
        Ok(())
    }

    /// Resolves once the attempt is given up.
    async fn given_up(&self) {
        let mut given_up = self.given_up.subscribe();
        let _ = given_up.wait_for(|given_up| *given_up).await;
    }

    /// The attempt ended: lets go of the socket.
    fn settle(&self) {
        *self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Held::Settled;
    }

    /// Gives the attempt up, unless it settled: shuts its socket (lapin's
    /// thread then reads its end), or stops it from connecting.
    fn give_up(&self) {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if matches!(*held, Held::Settled) {
            return;
        }
        self.given_up.send_replace(true);
        let held = std::mem::replace(&mut *held, Held::GivenUp);
        #[cfg(unix)]
        if let Held::Connecting(Some(handle)) = held {
            let _ = std::net::TcpStream::from(handle).shutdown(std::net::Shutdown::Both);
        }
        #[cfg(not(unix))]
        drop(held);
    }
}

fn given_up() -> lapin::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the connection attempt was given up").into()
}
