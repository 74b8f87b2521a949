//! bcoin (tests/js/bcoin_node.js, regtest, in memory) as the far side of the BP benchmarks.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A bcoin node driven one JSON line per command over its stdin.
pub struct Bcoin {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl Bcoin {
    pub fn start(port: u16, blocks: u32) -> Bcoin {
        let js = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/bcoin_node.js");
        let mut child = Command::new("node")
            .args([js, &port.to_string(), &blocks.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (Node.js) with tests/js/node_modules (run .ci/run once)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"height\""), "bcoin did not start: {line}");
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
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for Bcoin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two free ports in a row (bcoin binds PORT and PORT + 1).
pub fn free_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65_000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}
