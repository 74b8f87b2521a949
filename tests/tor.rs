//! Peers and clients through Tor, with a small SOCKS5 server of the test tree
//! (`tests/python/socks5.py`) standing in for Tor: it logs every request and maps `.onion`
//! names to local ports.
//!
//! - `nodectl lnp connect <id>@<name>.onion:9735` reaches a local node through it, the name sent
//!   as a name (address type 3); without a proxy a `.onion` dial is refused with the reason;
//! - a BP `connect` and a remote `nodectl --proxy` client go through it too;
//! - with `--always-use-proxy`, a dial while the proxy is down fails and is never made directly.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Socks {
    child: Child,
    port: u16,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Socks {
    /// Starts the SOCKS5 server with `maps` (`name:port` -> `host:port`).
    fn start(maps: &[(String, String)]) -> Socks {
        let tmp = tempfile::tempdir().unwrap();
        let (port_file, log) = (tmp.path().join("port"), tmp.path().join("requests.log"));
        let child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/socks5.py"
            ))
            .arg(&port_file)
            .arg(&log)
            .args(maps.iter().map(|(n, t)| format!("{n}={t}")))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the SOCKS5 server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Socks {
            child,
            port,
            log,
            _tmp: tmp,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests logged so far.
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn saw(&self, atyp: u64, host: &str, port: u16) -> bool {
        self.requests()
            .iter()
            .any(|r| r["atyp"] == atyp && r["host"] == host && r["port"] == port)
    }
}

impl Drop for Socks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn an_lnp_connect_to_an_onion_name_goes_through_the_proxy_as_a_name() {
    let b = Node::start("lnp", &[]);
    let info = b.info_json();
    let b_id = info["node_id"].as_str().unwrap().to_string();
    let b_addr = info["listening"][0].as_str().unwrap().to_string();
    let onion = "bnodeexampleexampleexampleexampleexampleexampleexampleqd.onion";
    let socks = Socks::start(&[(format!("{onion}:9735"), b_addr.clone())]);
    let a = Node::start("lnp", &["--proxy", &socks.addr()]);
    ok(a.cli(&["connect", &format!("{b_id}@{onion}:9735")]));
    assert!(socks.saw(3, onion, 9735), "{:?}", socks.requests());
    let peers = ok(a.cli(&["peers", "--json"]));
    assert!(peers.contains(&b_id), "{peers}");
    // An IP address is dialled directly (no --always-use-proxy): nothing more in the log.
    let before = socks.requests().len();
    let c = Node::start("lnp", &[]);
    let c_info = c.info_json();
    let c_addr = c_info["listening"][0].as_str().unwrap();
    ok(a.cli(&[
        "connect",
        &format!("{}@{c_addr}", c_info["node_id"].as_str().unwrap()),
    ]));
    assert_eq!(socks.requests().len(), before);
    // Without a proxy, a .onion name is refused with the reason, nothing resolved.
    let out = c.cli(&["connect", &format!("{b_id}@{onion}:9735")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--proxy"), "{err}");
}

#[test]
fn a_bp_connect_and_a_remote_client_go_through_the_proxy() {
    // BP: S dials T's address through the proxy (--always-use-proxy: an IP address too).
    let t = Node::start("bp", &["--network", "regtest", "--listen", "127.0.0.1:0"]);
    let t_addr = t.info_json()["listening"][0].as_str().unwrap().to_string();
    let rtmp = tempfile::tempdir_in("/tmp").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("client.key");
    let client = client_key(&key);
    let rdir = rtmp.path().join("lnp");
    let (r, api_port) = spawn_on_free_port("lnp", &rdir, |port| {
        vec![
            "-R".into(),
            format!("tcp://127.0.0.1:{port}"),
            "--rpc-allow".into(),
            client.clone(),
        ]
    });
    let onion = "apinodeexampleexampleexampleexampleexampleexampleexamplqd.onion";
    let socks = Socks::start(&[(
        format!("{onion}:{api_port}"),
        format!("127.0.0.1:{api_port}"),
    )]);
    let s = Node::start(
        "bp",
        &[
            "--network",
            "regtest",
            "--proxy",
            &socks.addr(),
            "--always-use-proxy",
        ],
    );
    ok(s.cli(&["connect", &t_addr]));
    assert!(
        socks.saw(1, "127.0.0.1", port_of(&t_addr)),
        "{:?}",
        socks.requests()
    );

    // A remote client reaches an LNP node's encrypted API by an .onion name through --proxy.
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = node_id_of(&rdir).map(|id| {
            Command::new(NODECTL)
                .args(["lnp", "info", "--json", "--timeout", "2", "--key"])
                .arg(&key)
                .args(["--remote", &format!("{id}@{onion}:{api_port}")])
                .args(["--proxy", &socks.addr()])
                .output()
                .unwrap()
        });
        if let Some(o) = out.filter(|o| o.status.success()) {
            break o;
        }
        assert!(Instant::now() < deadline, "{}", r.log_text());
        std::thread::sleep(Duration::from_millis(200));
    };
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["node"], "lnp");
    assert!(socks.saw(3, onion, api_port), "{:?}", socks.requests());
}

#[test]
fn with_always_use_proxy_a_dial_while_the_proxy_is_down_fails_and_is_never_direct() {
    // The target: a plain listener that counts connections.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for c in target.incoming().map_while(Result::ok) {
            count.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    let dead = format!("127.0.0.1:{}", free_port());
    let a = Node::start("lnp", &["--proxy", &dead, "--always-use-proxy"]);
    let id = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let out = a.cli(&["connect", &format!("{id}@127.0.0.1:{port}")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("proxy"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no direct connection");
    // A BP node too.
    let b = Node::start(
        "bp",
        &[
            "--network",
            "regtest",
            "--proxy",
            &dead,
            "--always-use-proxy",
        ],
    );
    let _ = b.cli(&["connect", &format!("127.0.0.1:{port}")]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no direct connection");
    // --always-use-proxy without a proxy stops a node at start.
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let out = Command::new(NODECTL)
        .args(["start", "--node", "lnp", "--always-use-proxy", "--data-dir"])
        .arg(tmp.path().join("x"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("always_use_proxy"),
        "{err}"
    );
}
