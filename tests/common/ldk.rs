//! The LDK counterparty (tests/ldk_peer, a program on the `lightning` crate built by `.ci/run`)
//! driven over its stdin: its own keys, wallet and chain (bcoin's blocks, fed by [`Ldk::sync`]).
//! Shared by the tests and `benches/channels.rs` (each crate's `common` has `bcoin::Bcoin`
//! with `cmd` and a `free_port`).

use super::bcoin::Bcoin;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The program, built by `.ci/run` (`cargo build --manifest-path tests/ldk_peer/Cargo.toml`).
pub fn program() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/ldk-peer");
    assert!(
        p.is_file(),
        "the LDK peer is missing: run `bash .ci/run` once, or `cargo build --manifest-path tests/ldk_peer/Cargo.toml --target-dir target`"
    );
    p
}

pub struct Ldk {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<serde_json::Value>,
    events: Receiver<serde_json::Value>,
    /// Events read while waiting for others.
    seen: Vec<serde_json::Value>,
    pub node_id: String,
    pub addr: String,
    /// The last bcoin height fed.
    pub height: u64,
}

impl Ldk {
    pub fn start() -> Ldk {
        Ldk::start_program(&program())
    }

    /// The LDK peer from `program` (the benchmark runs the release build).
    pub fn start_program(program: &Path) -> Ldk {
        let port = super::free_port();
        let mut child = Command::new(program)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ldk-peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (rtx, replies) = mpsc::channel();
        let (etx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v.get("event").is_some() {
                    let _ = etx.send(v);
                } else {
                    let _ = rtx.send(v);
                }
            }
        });
        let hello = replies
            .recv_timeout(Duration::from_secs(30))
            .expect("ldk-peer did not start");
        Ldk {
            child,
            stdin,
            replies,
            events,
            seen: Vec::new(),
            node_id: hello["node_id"].as_str().unwrap().into(),
            addr: format!("127.0.0.1:{port}"),
            height: 0,
        }
    }

    /// Runs a command; its `ok` value (panics on an error).
    pub fn cmd(&mut self, c: serde_json::Value) -> serde_json::Value {
        let r = self.try_cmd(c.clone());
        r.unwrap_or_else(|e| panic!("ldk-peer {c}: {e}"))
    }

    pub fn try_cmd(&mut self, c: serde_json::Value) -> Result<serde_json::Value, String> {
        writeln!(self.stdin, "{c}").unwrap();
        let v = self
            .replies
            .recv_timeout(Duration::from_secs(60))
            .expect("ldk-peer replies");
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(v["error"].to_string()),
        }
    }

    /// Feeds bcoin's blocks above the last one fed; the transactions LDK broadcast meanwhile
    /// go to bcoin's mempool.
    pub fn sync(&mut self, bcoin: &mut Bcoin) {
        self.relay(bcoin);
        let tip = bcoin.cmd("tip")["height"].as_u64().unwrap();
        self.feed(bcoin, tip);
    }

    /// Feeds bcoin's blocks above the last one fed, up to `to`.
    pub fn feed(&mut self, bcoin: &mut Bcoin, to: u64) {
        for h in self.height + 1..=to {
            let hash = bcoin.cmd(&format!("hash {h}"))["hash"]
                .as_str()
                .unwrap()
                .to_string();
            let hex = bcoin.cmd(&format!("block {hash}"))["hex"]
                .as_str()
                .unwrap()
                .to_string();
            self.cmd(serde_json::json!({"cmd": "block", "hex": hex, "height": h}));
        }
        self.height = self.height.max(to);
    }

    /// Every `broadcast` event so far into bcoin's mempool.
    pub fn relay(&mut self, bcoin: &mut Bcoin) {
        self.drain();
        let txs: Vec<String> = self
            .seen
            .iter()
            .filter(|e| e["event"] == "broadcast" && e.get("relayed").is_none())
            .map(|e| e["tx"].as_str().unwrap().to_string())
            .collect();
        for e in self.seen.iter_mut().filter(|e| e["event"] == "broadcast") {
            e["relayed"] = true.into();
        }
        for tx in txs {
            let v = bcoin.cmd(&format!("verdict {tx}"));
            if v.get("ok").is_none() {
                eprintln!("bcoin refused an LDK broadcast: {v}");
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
    }

    /// Waits for an event of `kind` matching `f` (seen before or to come); takes it.
    pub fn wait_event(
        &mut self,
        kind: &str,
        within: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            self.drain();
            if let Some(i) = self.seen.iter().position(|e| e["event"] == kind && f(e)) {
                return self.seen.remove(i);
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event from LDK; seen {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a transaction LDK broadcasts (one not relayed yet), puts it in bcoin's
    /// mempool, and returns its txid.
    pub fn next_broadcast(&mut self, bcoin: &mut Bcoin) -> String {
        let e = self.wait_event("broadcast", Duration::from_secs(30), |e| {
            e.get("relayed").is_none()
        });
        let v = bcoin.cmd(&format!("verdict {}", e["tx"].as_str().unwrap()));
        if v.get("ok").is_none() {
            eprintln!("bcoin refused an LDK broadcast: {v}");
        }
        e["txid"].as_str().unwrap().to_string()
    }

    /// Forgets the events so far (the benchmark, between samples).
    pub fn forget_events(&mut self) {
        self.drain();
        self.seen.clear();
    }

    /// An event of `kind` not taken yet, if any.
    pub fn try_take(&mut self, kind: &str) -> Option<serde_json::Value> {
        self.drain();
        let i = self.seen.iter().position(|e| e["event"] == kind)?;
        Some(self.seen.remove(i))
    }

    pub fn channels(&mut self) -> Vec<serde_json::Value> {
        self.cmd(serde_json::json!({"cmd": "channels"}))
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Ldk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
