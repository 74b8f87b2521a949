//! bcoin (npm 1.0.2), a full Bitcoin node in JavaScript, as the other side of the BP tests:
//! tests/js/bcoin_node.js on regtest, driven one JSON line per command over its stdin.

use super::{wait_until, Node};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A bcoin full node (tests/js/bcoin_node.js) driven over its stdin.
pub struct Bcoin {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Bcoin {
    pub fn start(blocks: u32) -> Bcoin {
        let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
        assert!(
            js.join("node_modules/bcoin").is_dir(),
            "bcoin is missing: run `bash .ci/run` once, or `cd tests/js && npm ci --ignore-scripts`"
        );
        // bcoin binds PORT (P2P) and PORT + 1 (HTTP): find two free ones in a row.
        let port = loop {
            let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = a.local_addr().unwrap().port();
            if p < 65_000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        };
        let mut child = Command::new("node")
            .arg(js.join("bcoin_node.js"))
            .args([port.to_string(), blocks.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (Node.js) must be installed");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let hello: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("bcoin did not start: {line}"));
        assert_eq!(hello["height"], blocks);
        Bcoin {
            child,
            stdin,
            stdout,
            port,
        }
    }

    pub fn cmd(&mut self, line: &str) -> serde_json::Value {
        writeln!(self.stdin, "{line}").unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v.get("error").is_none(), "bcoin: {v}");
        v
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Bcoin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tip(node: &Node) -> (u64, String) {
    let info = node.info_json();
    (
        info["tip_height"].as_u64().unwrap(),
        info["tip_hash"].as_str().unwrap().to_string(),
    )
}

pub fn wait_tip(node: &Node, hash: &str) {
    wait_until(Duration::from_secs(30), &format!("tip {hash}"), || {
        tip(node).1 == hash
    });
}
