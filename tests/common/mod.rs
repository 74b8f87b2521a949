//! Helpers for black-box tests: real `nodectl` processes on temp data dirs, and a raw ZMQ client
//! written from docs/API.md (it builds and parses frames by hand, not with the crate's codec).
#![allow(dead_code)]

pub mod bcoin;
pub mod ldk;
pub mod lnpeer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const NODECTL: &str = env!("CARGO_BIN_EXE_nodectl");

/// Generous deadline for a node to come up on a loaded CI machine (not a timing assertion).
pub const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Node {
    pub kind: &'static str,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts `nodectl start --node kind` on a fresh temp data dir with `extra` arguments.
    pub fn start(kind: &'static str, extra: &[&str]) -> Node {
        Node::start_env(kind, extra, &[])
    }

    /// Like [`Node::start`], with environment variables (the `NODECTL_*` config layer).
    pub fn start_env(kind: &'static str, extra: &[&str], env: &[(&str, &str)]) -> Node {
        let tmp = tempfile::Builder::new()
            .prefix("n")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().join(kind);
        let mut node = Node::spawn_in(kind, &dir, extra, env);
        node._tmp = Some(tmp);
        node.wait_ready();
        node
    }

    /// Spawns without waiting (for tests that expect failure or inspect early state).
    pub fn spawn_in(kind: &'static str, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Node {
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let log = dir.with_extension(format!("{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(NODECTL);
        cmd.args(["start", "--node", kind, "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Tests run in parallel: an LNP node listens on free loopback ports, not on 9735 and
        // 9999.
        if kind == "lnp" && !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if kind == "lnp" && !extra.contains(&"--bifrost-listen") {
            cmd.args(["--bifrost-listen", "127.0.0.1:0"]);
        }
        Node {
            kind,
            dir: dir.to_path_buf(),
            child: Some(cmd.spawn().expect("spawn nodectl")),
            log,
            _tmp: None,
        }
    }

    pub fn api(&self) -> PathBuf {
        self.dir.join("api")
    }

    pub fn api_endpoint(&self) -> String {
        format!("ipc://{}", self.api().display())
    }

    /// Keeps the temp dir its data dir is in until the node is dropped.
    pub fn keep_dir(&mut self, tmp: tempfile::TempDir) {
        self._tmp = Some(tmp);
    }

    /// Waits until `nodectl <kind> info` answers.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited early with {status}: {}", self.log_text());
            }
            if self.api().exists() {
                let out = self.cli(&["info", "--json", "--timeout", "2"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node not ready: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `nodectl <kind> <args> --data-dir <dir>`.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(NODECTL)
            .arg(self.kind)
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .output()
            .expect("run nodectl client")
    }

    pub fn info_json(&self) -> serde_json::Value {
        let out = self.cli(&["info", "--json"]);
        assert!(
            out.status.success(),
            "info failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("info --json is JSON")
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `f` on `info --json` until it holds (the node changes state asynchronously).
    /// A request sent while the API bridge rebinds its socket is lost by ZMQ and times out on
    /// the client, so a failed `info` is retried here until the deadline.
    pub fn wait_info(
        &self,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let out = self.cli(&["info", "--json", "--timeout", "2"]);
            let last = if out.status.success() {
                let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if f(&info) {
                    return info;
                }
                info.to_string()
            } else {
                String::from_utf8_lossy(&out.stderr).to_string()
            };
            assert!(
                Instant::now() < deadline,
                "{what}: last answer {last}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // NODECTL_TEST_KEEP_LOGS=1 keeps the node's log for a look after the test.
        if std::env::var_os("NODECTL_TEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

pub fn service<'a>(info: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    info["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {info}"))
}

// ---- Raw client: frames built by hand from docs/API.md ----

pub const LNPD: u8 = 0x20;
pub const BPD: u8 = 0x30;
pub const RGBD: u8 = 0x40;
pub const STORMD: u8 = 0x50;

pub fn manager_id(kind: &str) -> Vec<u8> {
    vec![match kind {
        "lnp" => LNPD,
        "bp" => BPD,
        "rgb" => RGBD,
        "storm" => STORMD,
        _ => unreachable!(),
    }]
}

pub fn client_id(n: u64) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

pub fn other_id(name: &str) -> Vec<u8> {
    let mut v = vec![0xff];
    v.extend_from_slice(&(name.len() as u16).to_le_bytes());
    v.extend_from_slice(name.as_bytes());
    v
}

pub fn payload(type_id: u16, request_id: u64, body: &[u8]) -> Vec<u8> {
    let mut v = type_id.to_le_bytes().to_vec();
    v.extend_from_slice(&request_id.to_le_bytes());
    v.extend_from_slice(body);
    v
}

pub fn string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

pub struct Raw {
    pub sock: zmq::Socket,
    pub id: Vec<u8>,
    _ctx: zmq::Context,
}

impl Raw {
    pub fn connect(endpoint: &str, id: Vec<u8>) -> Raw {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::DEALER).unwrap();
        sock.set_identity(&id).unwrap();
        sock.set_linger(0).unwrap();
        sock.connect(endpoint).unwrap();
        Raw {
            sock,
            id,
            _ctx: ctx,
        }
    }

    pub fn send(&self, dst: &[u8], payload: &[u8]) {
        self.sock
            .send_multipart([self.id.as_slice(), dst, payload], 0)
            .unwrap();
    }

    pub fn send_frames(&self, frames: &[&[u8]]) {
        self.sock.send_multipart(frames.iter().copied(), 0).unwrap();
    }

    /// Receives `[src, dst, payload]`, or None within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<Vec<u8>>> {
        if self
            .sock
            .poll(zmq::POLLIN, timeout.as_millis() as i64)
            .unwrap()
            == 0
        {
            return None;
        }
        Some(self.sock.recv_multipart(0).unwrap())
    }

    pub fn recv_msg(&self) -> Reply {
        let frames = self
            .recv(Duration::from_secs(15))
            .expect("a reply within 15 s");
        assert_eq!(frames.len(), 3, "replies have 3 frames");
        Reply::parse(frames)
    }
}

/// A reply parsed by hand.
#[derive(Debug)]
pub struct Reply {
    pub src: Vec<u8>,
    pub dst: Vec<u8>,
    pub type_id: u16,
    pub request_id: u64,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(frames: Vec<Vec<u8>>) -> Reply {
        let p = &frames[2];
        assert!(p.len() >= 10, "payload header is 10 bytes");
        Reply {
            src: frames[0].clone(),
            dst: frames[1].clone(),
            type_id: u16::from_le_bytes([p[0], p[1]]),
            request_id: u64::from_le_bytes(p[2..10].try_into().unwrap()),
            body: p[10..].to_vec(),
        }
    }

    /// (code, message) of a failure (type 0x0002).
    pub fn failure(&self) -> (u16, String) {
        assert_eq!(self.type_id, 0x0002, "expected a failure, got {self:?}");
        let code = u16::from_le_bytes([self.body[0], self.body[1]]);
        let mut c = Cursor(&self.body[2..]);
        (code, c.string())
    }
}

pub struct Cursor<'a>(pub &'a [u8]);

impl Cursor<'_> {
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn string(&mut self) -> String {
        let n = self.u16() as usize;
        String::from_utf8(self.take(n)).unwrap()
    }
    pub fn opt_string(&mut self) -> Option<String> {
        match self.u8() {
            0 => None,
            1 => Some(self.string()),
            t => panic!("bad option tag {t}"),
        }
    }
}

/// Decodes a `node_info` body (type 0x0101) into the JSON shape of `nodectl info --json`.
pub fn node_info_json(body: &[u8]) -> serde_json::Value {
    let mut c = Cursor(body);
    let node = c.string();
    let version = c.string();
    let network = c.string();
    let node_id: String = c.take(33).iter().map(|b| format!("{b:02x}")).collect();
    let uptime_s = c.u64();
    let mut endpoints = Vec::new();
    for _ in 0..c.u16() {
        let bus = c.string();
        let endpoint = c.string();
        endpoints.push(serde_json::json!({"bus": bus, "endpoint": endpoint}));
    }
    let mut services = Vec::new();
    for _ in 0..c.u16() {
        let name = c.string();
        let state = ["running", "restarting", "stopped"][c.u8() as usize];
        let restarts = c.u32();
        let last_failure = c.opt_string();
        services.push(serde_json::json!({"name": name, "state": state, "restarts": restarts, "last_failure": last_failure}));
    }
    let mut v = serde_json::json!({
        "node": node, "version": version, "network": network, "node_id": node_id,
        "uptime_s": uptime_s, "endpoints": endpoints, "services": services,
    });
    // Node-specific details (docs/API.md): key, tag, value; merged at the top level.
    for _ in 0..c.u16() {
        let key = c.string();
        v[key.as_str()] = match c.u8() {
            0 => serde_json::json!(c.u64()),
            1 => serde_json::json!(c.string()),
            2 => {
                let n = c.u16();
                serde_json::json!((0..n).map(|_| c.string()).collect::<Vec<_>>())
            }
            t => panic!("bad detail tag {t}"),
        };
    }
    assert!(c.0.is_empty(), "node_info has trailing bytes");
    v
}

/// The same JSON without the field that changes between two calls.
pub fn stable(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("uptime_s");
    v
}

/// The Python interpreter of the repo's venv (installed by .ci/run). Fails loudly if absent.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NODECTL_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/run` once, or `python3 -m venv .venv && .venv/bin/pip install pyzmq`",
        p.display()
    );
    p
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Polls `f` every 50 ms until it holds; fails the test with `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port free on all addresses at the time of the call, picked at random below Linux's
/// ephemeral range (32768..), so that the ports the OS hands out to other tests (port 0) do
/// not take it. Still racy between parallel tests: [`spawn_on_free_port`] retries.
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + (bitcoin::secp256k1::rand::random::<u16>() % 12_000);
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Spawns a node whose arguments bind a TCP port (`args(port)`), on a free port, and waits
/// until it has started; if the port was taken meanwhile (another test), again on another.
pub fn spawn_on_free_port(
    kind: &'static str,
    dir: &Path,
    args: impl Fn(u16) -> Vec<String>,
) -> (Node, u16) {
    for _ in 0..5 {
        let port = free_port();
        let a = args(port);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut node = Node::spawn_in(kind, dir, &refs, &[]);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if node.log_text().contains("node started") {
                return (node, port);
            }
            if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
                assert!(
                    node.log_text().contains("Address already in use"),
                    "node exited with {st}: {}",
                    node.log_text()
                );
                break;
            }
            assert!(Instant::now() < deadline, "{}", node.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("no free port in five tries");
}

/// The public key of the client key file `path` (`nodectl key show`, which creates it).
pub fn client_key(path: &Path) -> String {
    let out = Command::new(NODECTL)
        .args(["key", "show", "--key"])
        .arg(path)
        .output()
        .unwrap();
    ok(out).trim().to_string()
}

/// The node id of the node whose data dir is `dir`, once its key file exists.
pub fn node_id_of(dir: &Path) -> Option<String> {
    let bytes = std::fs::read(dir.join("node.key")).ok()?;
    let secret = bitcoin::secp256k1::SecretKey::from_slice(&bytes).ok()?;
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let public = bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &secret);
    Some(bitcoin::hex::DisplayHex::to_lower_hex_string(
        &public.serialize()[..],
    ))
}

/// Connects LNP node `from` to LNP node `to` over Bifrost (`nodectl lnp connect bifrost://…`).
pub fn connect_bifrost(from: &Node, to: &Node) {
    let info = to.info_json();
    let id = info["node_id"].as_str().unwrap();
    let addr = info["bifrost_listening"][0].as_str().unwrap();
    ok(from.cli(&["connect", &format!("bifrost://{id}@{addr}")]));
}

/// The stdout of a `nodectl` run that must succeed (its stderr in the failure message).
pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "nodectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `nodectl ARGS --data-dir DIR` left running; its stdout lines that parse as JSON and pass
/// `keep`, as they come (`chat listen --json`, `download --wait --json`).
pub fn json_lines(
    args: &[&str],
    dir: &Path,
    keep: fn(&serde_json::Value) -> bool,
) -> (Child, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::BufRead;
    let mut child = Command::new(NODECTL)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if keep(&v) && tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

/// A config file (`--config PATH`) with `text`, removed when dropped.
pub struct ConfigFile {
    _dir: tempfile::TempDir,
    pub path: String,
}

/// Writes `text` (TOML: only the keys that differ from the defaults) to a fresh config file.
pub fn config_file(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).unwrap();
    ConfigFile {
        path: path.display().to_string(),
        _dir: dir,
    }
}
