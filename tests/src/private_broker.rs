//! A private RabbitMQ node for tests that restart the broker or need TLS:
//! started by the test on free loopback ports, with its own data directory,
//! so the shared broker is never touched.
//!
//! It runs the `rabbitmq-server` of the installed RabbitMQ (found under
//! `/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin`, or in
//! `RPC_TEST_RABBITMQ_SBIN`). Starting a node takes a few seconds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::worker::TempDir;

/// Certificate files for a node's TLS listener, in PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The authority that signed the node's certificate.
    pub ca: PathBuf,
    /// The node's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A RabbitMQ node of the test's own. Dropping it stops the node and
/// removes its files.
#[derive(Debug)]
pub struct PrivateBroker {
    dir: TempDir,
    node: String,
    port: u16,
    tls_port: Option<u16>,
    sbin: PathBuf,
}

impl PrivateBroker {
    /// Starts a node listening on a free port (and, with `tls`, on a second
    /// one for `amqps://`); panics with the node's logs when it fails.
    pub fn start(tls: Option<&TlsFiles>) -> PrivateBroker {
        let dir = TempDir::new("rpc-broker");
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let mut config = format!("listeners.tcp.default = {port}\nloopback_users = none\n");
        if let (Some(tls), Some(tls_port)) = (tls, tls_port) {
            let _ = write!(
                config,
                "listeners.ssl.default = {tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display()
            );
        }
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create the node's home");
        write_private(&home.join(".erlang.cookie"), &uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(dir.path().join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("write enabled_plugins");
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("write rabbitmq-env.conf");
        let broker = PrivateBroker {
            node: format!("rpctest{port}@localhost"),
            dir,
            port,
            tls_port,
            sbin: sbin(),
        };
        broker.boot();
        broker
    }

    /// `amqp://` URL of the node, with extra query options.
    pub fn url(&self, options: &str) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f?{options}", self.port)
    }

    /// `amqps://` URL of the node's TLS listener (host `localhost`, which its
    /// certificate names), with extra query options.
    pub fn tls_url(&self, options: &str) -> String {
        let port = self.tls_port.expect("the node was started with TLS");
        format!("amqps://guest:guest@localhost:{port}/%2f?{options}")
    }

    /// The plain AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the node (its data stays); every connection drops.
    pub fn stop(&self) {
        let output = self.ctl(&["stop"]);
        assert!(
            output.status.success(),
            "cannot stop {}: {}",
            self.node,
            describe(&output)
        );
    }

    /// Starts the stopped node again, on the same ports and data.
    pub fn restart(&self) {
        self.boot();
    }

    fn boot(&self) {
        let status = self
            .command(self.sbin.join("rabbitmq-server"))
            .arg("-detached")
            .status()
            .unwrap_or_else(|error| panic!("cannot run rabbitmq-server from {}: {error}", self.sbin.display()));
        assert!(status.success(), "rabbitmq-server -detached failed: {status}");
        let pid_file = self.dir.path().join("pid");
        let pid_file = pid_file.to_str().expect("a UTF-8 path");
        let output = self.ctl(&["wait", pid_file, "--timeout", "90"]);
        if !output.status.success() {
            panic!(
                "the private node {} did not start: {}\n{}",
                self.node,
                describe(&output),
                self.logs()
            );
        }
    }

    /// The node's log files, for a failure message.
    pub fn logs(&self) -> String {
        let mut logs = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                let _ = writeln!(logs, "== {}", entry.path().display());
                for line in tail.into_iter().rev() {
                    let _ = writeln!(logs, "{line}");
                }
            }
        }
        logs
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.command(self.sbin.join("rabbitmqctl"))
            .args(["-n", &self.node])
            .args(args)
            .output()
            .expect("run rabbitmqctl")
    }

    fn command(&self, program: PathBuf) -> Command {
        let dir = self.dir.path();
        let mut command = Command::new(program);
        command
            .env("HOME", dir.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_FLAGS", "-kernel inet_dist_use_interface {127,0,0,1}");
        command
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
    }
}

/// Where RabbitMQ's scripts are.
fn sbin() -> PathBuf {
    if let Some(sbin) = std::env::var_os("RPC_TEST_RABBITMQ_SBIN") {
        return PathBuf::from(sbin);
    }
    let lib = Path::new("/usr/lib/rabbitmq/lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("sbin"))
        .filter(|sbin| sbin.join("rabbitmq-server").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no RabbitMQ installation under {}: install rabbitmq-server (scripts/test.sh does), \
             or set RPC_TEST_RABBITMQ_SBIN",
            lib.display()
        )
    })
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn write_private(path: &Path, contents: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .expect("create a private file");
    file.write_all(contents.as_bytes()).expect("write a private file");
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes a fresh certificate authority and a certificate it signed for
/// `localhost` and `127.0.0.1` into `dir`, with the `openssl` command.
pub fn make_certificates(dir: &Path, name: &str) -> TlsFiles {
    let path = |file: &str| dir.join(format!("{name}-{file}"));
    let files = TlsFiles {
        ca: path("ca.pem"),
        cert: path("cert.pem"),
        key: path("key.pem"),
    };
    let (ca_key, csr, ext) = (path("ca-key.pem"), path("cert.csr"), path("ext.cnf"));
    std::fs::write(&ext, "subjectAltName = DNS:localhost, IP:127.0.0.1\n").expect("write the extension file");
    let subject = format!("/CN={name} test CA");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &subject,
        "-keyout",
        s(&ca_key),
        "-out",
        s(&files.ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        s(&files.key),
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&files.ca),
        "-CAkey",
        s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        s(&ext),
        "-out",
        s(&files.cert),
    ]);
    files
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (install it: scripts/test.sh does)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        describe(&output)
    );
}
