//! Private RabbitMQ nodes for tests that restart, kill or cluster the broker,
//! need TLS, or need RabbitMQ 4: started by the test on free loopback ports,
//! with their own data directories, so the shared broker is never touched.
//!
//! Two releases: the installed RabbitMQ (3.10 on Debian 12; its scripts
//! under `/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin`, or in
//! `RPC_TEST_RABBITMQ_SBIN`), and RabbitMQ 4.0, run from the Debian trixie
//! root that `scripts/rabbitmq4.sh` builds (`RPC_TEST_RABBITMQ4_ROOT`, or
//! that script's cache), through `chroot`. Starting a node takes a few
//! seconds.

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

/// Which RabbitMQ a node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The installed one (3.10 here).
    Installed,
    /// RabbitMQ 4.0 from the trixie root, configured as RabbitMQ 4.3 is by
    /// default: transient non-exclusive queues and global QoS refused.
    Rabbit4,
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The release.
    pub release: Release,
    /// A TLS listener with these files.
    pub tls: Option<TlsFiles>,
    /// The Erlang cookie (nodes of one cluster share it).
    pub cookie: Option<String>,
    /// Extra `rabbitmq.conf` lines.
    pub config: String,
    /// Plugins to enable (`rabbitmq_management`...).
    pub plugins: Vec<&'static str>,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions {
            release: Release::Installed,
            tls: None,
            cookie: None,
            config: String::new(),
            plugins: Vec::new(),
        }
    }
}

/// How commands reach a release's scripts.
#[derive(Debug)]
struct Runner {
    /// The root to `chroot` into, for RabbitMQ 4.
    root: Option<PathBuf>,
    sbin: PathBuf,
}

impl Runner {
    fn new(release: &Release) -> Runner {
        match release {
            Release::Installed => Runner {
                root: None,
                sbin: sbin(),
            },
            Release::Rabbit4 => {
                let root = rabbit4_root();
                let lib = root.join("usr/lib/rabbitmq/lib");
                let sbin = newest_sbin(&lib)
                    .unwrap_or_else(|| panic!("no RabbitMQ under {}: run scripts/rabbitmq4.sh", lib.display()));
                let inside = Path::new("/").join(sbin.strip_prefix(&root).expect("under the root"));
                Runner {
                    root: Some(root),
                    sbin: inside,
                }
            }
        }
    }

    /// Where node directories go: under the root for a chroot.
    fn temp_dir(&self) -> TempDir {
        match &self.root {
            Some(root) => TempDir::new_in(&root.join("tmp"), "rpc-broker"),
            None => TempDir::new("rpc-broker"),
        }
    }

    /// `path` as the node sees it.
    fn inside(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => Path::new("/").join(path.strip_prefix(root).expect("under the root")),
            None => path.to_owned(),
        }
    }

    /// A command running `program` of the release with `env`.
    fn command(&self, program: &str, env: &[(&str, String)]) -> Command {
        let program = self.sbin.join(program);
        match &self.root {
            None => {
                let mut command = Command::new(program);
                command.envs(env.iter().map(|(key, value)| (*key, value)));
                command
            }
            Some(root) => {
                let mut command = Command::new("chroot");
                command
                    .arg(root)
                    .arg("/usr/bin/env")
                    .arg("-i")
                    .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
                    .arg("LANG=C.UTF-8")
                    .args(env.iter().map(|(key, value)| format!("{key}={value}")))
                    .arg(program);
                command
            }
        }
    }
}

/// A RabbitMQ node of the test's own. Dropping it stops the node and
/// removes its files.
#[derive(Debug)]
pub struct PrivateBroker {
    dir: TempDir,
    node: String,
    port: u16,
    tls_port: Option<u16>,
    runner: Runner,
}

impl PrivateBroker {
    /// Starts a node of the installed release listening on a free port
    /// (and, with `tls`, on a second one for `amqps://`); panics with the
    /// node's logs when it fails.
    pub fn start(tls: Option<&TlsFiles>) -> PrivateBroker {
        PrivateBroker::start_with(NodeOptions {
            tls: tls.cloned(),
            ..NodeOptions::default()
        })
    }

    /// Starts a node as `options` say. A node that does not come up gets
    /// one more try on fresh ports and a fresh name: on a busy machine a port
    /// chosen free may be taken before the node binds it (seen once in a
    /// full run: the node never wrote its pid file).
    pub fn start_with(options: NodeOptions) -> PrivateBroker {
        let broker = PrivateBroker::configure(&options);
        match broker.try_boot() {
            Ok(()) => broker,
            Err(first) => {
                eprintln!("private_broker: a node did not start; trying once more on fresh ports:\n{first}");
                drop(broker);
                let broker = PrivateBroker::configure(&options);
                broker.boot();
                broker
            }
        }
    }

    /// Writes a node's files, without starting it.
    fn configure(options: &NodeOptions) -> PrivateBroker {
        let runner = Runner::new(&options.release);
        let dir = runner.temp_dir();
        let port = free_port();
        let tls_port = options.tls.as_ref().map(|_| free_port());
        let mut config = format!("listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n");
        if options.release == Release::Rabbit4 {
            config.push_str(
                "deprecated_features.permit.transient_nonexcl_queues = false\n\
                 deprecated_features.permit.global_qos = false\n",
            );
        }
        if let (Some(tls), Some(tls_port)) = (&options.tls, tls_port) {
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
        config.push_str(&options.config);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create the node's home");
        let cookie = options
            .cookie
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        write_private(&home.join(".erlang.cookie"), &cookie);
        std::fs::write(dir.path().join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        let plugins = format!("[{}].\n", options.plugins.join(","));
        std::fs::write(dir.path().join("enabled_plugins"), plugins).expect("write enabled_plugins");
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("write rabbitmq-env.conf");
        PrivateBroker {
            node: format!("rpctest{port}@localhost"),
            dir,
            port,
            tls_port,
            runner,
        }
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

    /// The node's name (`rpctest<port>@localhost`).
    pub fn name(&self) -> &str {
        &self.node
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

    /// Kills the node (SIGKILL), as a crash or a power cut would: no
    /// connection is closed, nothing is flushed beyond what the node synced.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid")).expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("run kill");
        assert!(status.success(), "cannot kill {} (pid {})", self.node, pid.trim());
        // Until the kernel has reaped it, the node still holds its port.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} is still up after SIGKILL",
                self.node
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts the stopped (or killed) node again, on the same ports and data.
    pub fn restart(&self) {
        self.boot();
    }

    /// Runs `rabbitmqctl` on the node; panics when it fails.
    pub fn rabbitmqctl(&self, args: &[&str]) -> String {
        let output = self.ctl(args);
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} on {}: {}",
            self.node,
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn boot(&self) {
        if let Err(failure) = self.try_boot() {
            panic!("{failure}");
        }
    }

    /// Starts the node and waits until it runs; says why it did not.
    fn try_boot(&self) -> Result<(), String> {
        let status = self
            .command("rabbitmq-server")
            .arg("-detached")
            .status()
            .unwrap_or_else(|error| panic!("cannot run rabbitmq-server ({}): {error}", self.runner.sbin.display()));
        if !status.success() {
            return Err(format!("rabbitmq-server -detached failed: {status}"));
        }
        let pid_file = self.runner.inside(&self.dir.path().join("pid"));
        let pid_file = pid_file.to_str().expect("a UTF-8 path").to_owned();
        let output = self.ctl(&["wait", &pid_file, "--timeout", "90"]);
        if !output.status.success() {
            return Err(format!(
                "the private node {} did not start: {}\n{}",
                self.node,
                describe(&output),
                self.logs()
            ));
        }
        Ok(())
    }

    /// The node's log files, for a failure message.
    pub fn logs(&self) -> String {
        let mut logs = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|extension| extension == "dump") {
                    continue;
                }
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
        self.command("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args)
            .output()
            .expect("run rabbitmqctl")
    }

    fn command(&self, program: &str) -> Command {
        let dir = |name: &str| {
            self.runner
                .inside(&self.dir.path().join(name))
                .to_string_lossy()
                .into_owned()
        };
        let env = [
            ("HOME", dir("home")),
            ("RABBITMQ_NODENAME", self.node.clone()),
            ("RABBITMQ_DIST_PORT", free_port().to_string()),
            ("RABBITMQ_CONF_ENV_FILE", dir("rabbitmq-env.conf")),
            ("RABBITMQ_CONFIG_FILE", dir("rabbitmq")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins")),
            ("RABBITMQ_MNESIA_BASE", dir("mnesia")),
            ("RABBITMQ_LOG_BASE", dir("log")),
            ("RABBITMQ_PID_FILE", dir("pid")),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
            ("ERL_FLAGS", "-kernel inet_dist_use_interface {127,0,0,1}".to_owned()),
        ];
        self.runner.command(program, &env)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
    }
}

/// Nodes of one cluster, joined to the first.
#[derive(Debug)]
pub struct PrivateCluster {
    /// The nodes, the first one the cluster was joined to.
    pub nodes: Vec<PrivateBroker>,
}

impl PrivateCluster {
    /// Starts `size` nodes of `release` sharing one cookie, and joins them
    /// into one cluster.
    pub fn start(size: usize, release: Release) -> PrivateCluster {
        let cookie = uuid::Uuid::new_v4().simple().to_string();
        let options = NodeOptions {
            release,
            cookie: Some(cookie),
            ..NodeOptions::default()
        };
        let nodes: Vec<PrivateBroker> = (0..size).map(|_| PrivateBroker::start_with(options.clone())).collect();
        let first = nodes[0].name().to_owned();
        for node in &nodes[1..] {
            node.rabbitmqctl(&["stop_app"]);
            node.rabbitmqctl(&["join_cluster", &first]);
            node.rabbitmqctl(&["start_app"]);
        }
        PrivateCluster { nodes }
    }

    /// A URL naming every node, first to last, with extra query options.
    pub fn url(&self, options: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("guest:guest@127.0.0.1:{}", node.port()))
            .collect();
        format!("amqp://{}/%2f?{options}", hosts.join(","))
    }
}

/// The trixie root with RabbitMQ 4: `RPC_TEST_RABBITMQ4_ROOT`, or the cache
/// `scripts/rabbitmq4.sh` fills.
fn rabbit4_root() -> PathBuf {
    if let Some(root) = std::env::var_os("RPC_TEST_RABBITMQ4_ROOT") {
        return PathBuf::from(root);
    }
    let cache = std::env::var_os("RPC_TEST_CACHE").map_or_else(|| PathBuf::from("/var/cache/rpc-tests"), PathBuf::from);
    let root = cache.join("rabbitmq4-trixie");
    assert!(
        root.join(".complete").exists(),
        "no RabbitMQ 4 root at {}: run scripts/rabbitmq4.sh (scripts/test.sh does)",
        root.display()
    );
    root
}

fn newest_sbin(lib: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("sbin"))
        .filter(|sbin| sbin.join("rabbitmq-server").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Where the installed RabbitMQ's scripts are.
fn sbin() -> PathBuf {
    if let Some(sbin) = std::env::var_os("RPC_TEST_RABBITMQ_SBIN") {
        return PathBuf::from(sbin);
    }
    let lib = Path::new("/usr/lib/rabbitmq/lib");
    newest_sbin(lib).unwrap_or_else(|| {
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
