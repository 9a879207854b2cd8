//! A TCP proxy a test controls, between our processes and the broker: it
//! can cut every connection, refuse new ones, stall them (connections stay
//! open but no byte moves, as in a network partition), and let them
//! through again, without touching the shared broker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// A proxy listening on a local port, forwarding to `upstream`.
#[derive(Debug)]
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

#[derive(Debug)]
struct Shared {
    refusing: AtomicBool,
    /// While true, no byte is forwarded either way.
    stalled: watch::Sender<bool>,
    /// Bytes from clients read while stalled, held back from the broker.
    held: AtomicUsize,
    /// Raised to close the client side of the connections accepted before:
    /// each knows the value at its start.
    orphaned: watch::Sender<u64>,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free local port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            refusing: AtomicBool::new(false),
            stalled: watch::channel(false).0,
            held: AtomicUsize::new(0),
            orphaned: watch::channel(0).0,
            connections: Mutex::default(),
        });
        let accept = tokio::spawn(accept(listener, upstream, Arc::clone(&shared))).abort_handle();
        Proxy {
            address,
            shared,
            accept,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Closes every forwarded connection and refuses new ones (they are
    /// accepted, then closed at once) until [`restore`](Proxy::restore).
    /// Returns once the connections' sockets are closed: on a busy machine
    /// a cancelled forwarding task may take a while to be dropped.
    pub async fn cut(&self) {
        for connection in self.abort_all() {
            // A cancelled task has dropped its sockets once it is joined.
            let _ = connection.await;
        }
    }

    fn abort_all(&self) -> Vec<JoinHandle<()>> {
        self.shared.refusing.store(true, Ordering::SeqCst);
        let cut: Vec<JoinHandle<()>> = self.shared.connections.lock().unwrap().drain(..).collect();
        for connection in &cut {
            connection.abort();
        }
        cut
    }

    /// Lets connections through again (after [`cut`](Proxy::cut) or [`stall`](Proxy::stall)).
    pub fn restore(&self) {
        self.shared.refusing.store(false, Ordering::SeqCst);
        self.shared.stalled.send_replace(false);
    }

    /// Stops moving bytes on every connection, old and new, while keeping
    /// them open: the peers see silence, not a closed socket.
    pub fn stall(&self) {
        self.shared.stalled.send_replace(true);
    }

    /// Closes the client side of every forwarded connection and keeps its
    /// broker side open and silent, as a load balancer failing over does:
    /// clients see their connections closed and connect again (through the
    /// proxy, as new connections pass), while the broker holds the old ones
    /// (and their exclusive queues) until its heartbeat timeout.
    pub fn drop_clients(&self) {
        self.shared.orphaned.send_modify(|generation| *generation += 1);
    }

    /// How many bytes from clients the proxy read while stalled and holds
    /// back from the broker: once a client wrote, what it wrote is known
    /// not to have reached the broker.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// How many connections are being forwarded now.
    pub fn connections(&self) -> usize {
        let mut connections = self.shared.connections.lock().unwrap();
        connections.retain(|connection| !connection.is_finished());
        connections.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.abort_all();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while let Ok((inbound, _)) = listener.accept().await {
        if shared.refusing.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        let stalled = shared.stalled.subscribe();
        let mut orphaned = shared.orphaned.subscribe();
        let generation = *orphaned.borrow_and_update();
        let counter = Arc::clone(&shared);
        let forward = tokio::spawn(async move {
            if let Ok(outbound) = TcpStream::connect(upstream).await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_broker, mut to_broker) = outbound.into_split();
                let dropped = tokio::select! {
                    () = pipe(&mut from_client, &mut to_broker, stalled.clone(), Some(&counter.held)) => false,
                    () = pipe(&mut from_broker, &mut to_client, stalled, None) => false,
                    _ = orphaned.wait_for(|now| *now > generation) => true,
                };
                if dropped {
                    drop((from_client, to_client));
                    // The broker's side stays open, unread and unwritten.
                    std::future::pending::<()>().await;
                }
            }
        });
        shared.connections.lock().unwrap().push(forward);
    }
}

/// Copies `from` to `to` until either closes, holding bytes while stalled
/// (counted in `held`, when given).
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stalled: watch::Receiver<bool>,
    held: Option<&AtomicUsize>,
) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if let Some(held) = held.filter(|_| *stalled.borrow()) {
            held.fetch_add(read, Ordering::SeqCst);
        }
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// The broker's address, from a broker URL with an explicit `host:port`.
pub fn upstream_of(url: &str) -> SocketAddr {
    let config = rpc_amqp::AmqpConfig::from_url(url).expect("a valid broker URL");
    let host = &config.hosts()[0];
    let name = if host.host == "localhost" {
        "127.0.0.1"
    } else {
        host.host.as_str()
    };
    format!("{name}:{}", host.port)
        .parse()
        .expect("the test broker URL names an IP address and a port")
}

/// `url` rewritten to reach the broker through local ports (one host each,
/// with the URL's credentials), plus extra query options.
pub fn through(url: &str, ports: &[u16], options: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let at = main.rfind('@');
    let userinfo = at.map(|at| &main[..=at]).unwrap_or("");
    let after_host = &main[at.map_or(0, |at| at + 1)..];
    let path = after_host.find('/').map_or("", |slash| &after_host[slash..]);
    let hosts: Vec<String> = ports.iter().map(|port| format!("{userinfo}127.0.0.1:{port}")).collect();
    let mut query: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
    query.extend(options.split('&').filter(|pair| !pair.is_empty()));
    format!("{scheme}://{}{path}?{}", hosts.join(","), query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_urls() {
        assert_eq!(
            through(
                "amqp://u:p@10.0.0.1:5672/%2f?heartbeat=5",
                &[1, 2],
                "retry_interval=0.1"
            ),
            "amqp://u:p@127.0.0.1:1,u:p@127.0.0.1:2/%2f?heartbeat=5&retry_interval=0.1"
        );
        assert_eq!(
            upstream_of("amqp://u:p@127.0.0.1:5673/"),
            "127.0.0.1:5673".parse().unwrap()
        );
    }
}
