//! Every `nodectl` subcommand with hostile arguments: non-ASCII text, empty strings, 10 kB
//! strings, negative, NaN, infinite or huge numbers, bad hex. Each run must end by itself with
//! exit code 1 and a one-line error on stderr: never 101 (a panic), never a hang.
//!
//! Real LNP and BP nodes run behind the commands, so an argument the client lets through
//! reaches the node and comes back as a failure reply; RGB and Storm commands run against a
//! data dir with no node.

mod common;

use common::{Node, NODECTL};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run that takes longer than this hangs (a generous deadline, not a timing assertion).
const HANG: Duration = Duration::from_secs(30);

fn ten_kb() -> String {
    "x".repeat(10_000)
}

/// Hostile texts (NUL cannot be passed in argv at all).
fn texts() -> Vec<String> {
    vec![
        String::new(),
        "aé".into(),
        "☃".repeat(40),
        "a b".into(),
        "line\nbreak".into(),
        ten_kb(),
    ]
}

/// Hostile numbers.
fn numbers() -> Vec<String> {
    [
        "-1",
        "-0",
        "0",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "18446744073709551616",
        "99999999999999999999999999999",
        "0x10",
        "",
        "٣",
    ]
    .map(String::from)
    .to_vec()
}

/// Hostile hex (node ids, transactions).
fn hexes() -> Vec<String> {
    let mut v = vec![
        "zz".to_string(),
        "abc".into(),
        format!("a{}", "é".repeat(32)) + "0",
        "é".repeat(33),
        format!("aé{}", "0".repeat(63)),
        "0".repeat(66),
        "00".repeat(5_000),
        format!("02{}", "ff".repeat(32)),
    ];
    v.extend(texts());
    v
}

/// Runs `nodectl args…` and asserts: ends within [`HANG`], exit code 1, one line on stderr
/// starting with `nodectl: error:`.
fn fails_cleanly(args: &[String]) {
    let mut child = Command::new(NODECTL)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nodectl");
    let deadline = Instant::now() + HANG;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("nodectl {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown: Vec<String> = args.iter().map(|a| a.chars().take(40).collect()).collect();
    assert_ne!(out.status.code(), Some(101), "panic on {shown:?}: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code of {shown:?}: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {shown:?}: {stderr}");
    assert!(
        lines[0].starts_with("nodectl: error: "),
        "{shown:?}: {stderr}"
    );
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_subcommand_refuses_hostile_arguments_with_one_line_and_exit_code_1() {
    let lnp = Node::start("lnp", &["--network", "regtest"]);
    let bp = Node::start("bp", &["--network", "regtest"]);
    let storm = Node::start("storm", &["--network", "regtest"]);
    let none = tempfile::tempdir_in("/tmp").unwrap();
    let lnp_dir = lnp.dir.to_str().unwrap().to_string();
    let bp_dir = bp.dir.to_str().unwrap().to_string();
    let storm_dir = storm.dir.to_str().unwrap().to_string();
    let key = "ab".repeat(32);
    let small = none.path().join("small");
    std::fs::write(&small, b"x").unwrap();
    let small = small.to_str().unwrap().to_string();
    let huge = none.path().join("huge");
    std::fs::write(&huge, vec![0u8; lnpbp_nodes::wire::limits::MAX_VALUE + 1]).unwrap();
    let huge = huge.to_str().unwrap().to_string();
    let none_dir = none.path().to_str().unwrap().to_string();
    // A valid key that is not a peer: the node answers "not connected" (exit 1).
    let stranger = format!(
        "02{}",
        "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    );
    let mut runs: Vec<Vec<String>> = Vec::new();
    let on = |node: &str, dir: &str, rest: &[String]| -> Vec<String> {
        let mut v = args(&[node, "--data-dir", dir]);
        v.extend_from_slice(rest);
        v
    };

    for n in numbers() {
        // --timeout on every client command (the 0-second ones included).
        for (node, dir) in [
            ("lnp", &lnp_dir),
            ("bp", &bp_dir),
            ("rgb", &none_dir),
            ("storm", &none_dir),
            ("storm", &storm_dir),
        ] {
            runs.push(on(
                node,
                dir,
                &args(&["info", "--timeout"])
                    .into_iter()
                    .chain([n.clone()])
                    .collect::<Vec<_>>(),
            ));
            runs.push(on(
                node,
                dir,
                &[args(&["events"]), vec![format!("--timeout={n}")]].concat(),
            ));
        }
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["peers"]), vec![format!("--timeout={n}")]].concat(),
        ));
        runs.push(on(
            "storm",
            &storm_dir,
            &[args(&["store", "tables"]), vec![format!("--timeout={n}")]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["watch"]), vec![format!("--timeout={n}")]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["peers"]), vec![format!("--timeout={n}")]].concat(),
        ));
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["ping", &stranger]), vec![format!("--bytes={n}")]].concat(),
        ));
        if n != "0" {
            // (Height 0 is the genesis block: a valid question.)
            runs.push(on(
                "bp",
                &bp_dir,
                &[args(&["header"]), vec![n.clone()]].concat(),
            ));
            runs.push(on(
                "bp",
                &bp_dir,
                &[args(&["block"]), vec![n.clone()]].concat(),
            ));
        }
        runs.push(
            args(&[
                "start",
                "--node",
                "lnp",
                "--data-dir",
                &none_dir,
                "--network",
            ])
            .into_iter()
            .chain([n.clone()])
            .collect(),
        );
    }
    for t in texts() {
        for (node, dir) in [
            ("lnp", &lnp_dir),
            ("bp", &bp_dir),
            ("rgb", &none_dir),
            ("storm", &none_dir),
        ] {
            runs.push(on(
                node,
                dir,
                &[args(&["debug", "crash"]), vec![t.clone()]].concat(),
            ));
            runs.push(on(
                node,
                dir,
                &[args(&["info", "-R"]), vec![t.clone()]].concat(),
            ));
        }
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["listen"]), vec![t.clone()]].concat(),
        ));
        // The channel commands (this node has no BP node: whatever parses is refused too).
        for rest in [
            vec![
                "channel".to_string(),
                "open".into(),
                t.clone(),
                "1000".into(),
            ],
            vec![
                "channel".to_string(),
                "open".into(),
                stranger.clone(),
                t.clone(),
            ],
            vec!["pay".to_string(), t.clone()],
            vec!["close".to_string(), t.clone()],
            vec!["invoice".to_string(), t.clone()],
            vec![
                "invoice".to_string(),
                "1000".into(),
                "--description".into(),
                t.clone(),
            ],
        ] {
            runs.push(on("lnp", &lnp_dir, &rest));
        }
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["connect"]), vec![t.clone()]].concat(),
        ));
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["connect"]), vec![format!("{stranger}@{t}")]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["connect"]), vec![t.clone()]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["header"]), vec![t.clone()]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["block"]), vec![t.clone()]].concat(),
        ));
        // The signer: a PSBT that is text, a file that is not there, an index that is not one.
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["sign"]), vec![t.clone()]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["sign", "--finalize"]), vec![t.clone()]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["address", "--index"]), vec![t.clone()]].concat(),
        ));
        runs.push(
            args(&[
                "start",
                "--node",
                "lnp",
                "--data-dir",
                &none_dir,
                "--listen",
            ])
            .into_iter()
            .chain([t.clone()])
            .collect(),
        );
        runs.push(
            args(&[
                "start",
                "--node",
                "bp",
                "--data-dir",
                &none_dir,
                "--connect",
            ])
            .into_iter()
            .chain([t.clone()])
            .collect(),
        );
        runs.push(
            args(&[
                "start",
                "--node",
                "storm",
                "--data-dir",
                &none_dir,
                "--config",
            ])
            .into_iter()
            .chain([t.clone()])
            .collect(),
        );
        runs.push(
            args(&["start", "--node"])
                .into_iter()
                .chain([t.clone()])
                .collect(),
        );
    }
    for t in texts() {
        // Storm: every table argument, container id, MIME type and output path.
        let d = &storm_dir;
        for cmd in ["count", "list"] {
            runs.push(on(
                "storm",
                d,
                &[args(&["store", cmd]), vec![t.clone()]].concat(),
            ));
        }
        for cmd in ["get", "delete"] {
            runs.push(on("storm", d, &args(&["store", cmd, &t, &key])));
        }
        runs.push(on("storm", d, &args(&["store", "put", &t, &key, &small])));
        runs.push(on("storm", d, &args(&["containerize", &t])));
        runs.push(on(
            "storm",
            d,
            &args(&["containerize", &small, "--mime", &t]),
        ));
        runs.push(on("storm", d, &args(&["assemble", &t, &small])));
        runs.push(on("storm", d, &args(&["assemble", &key, &t])));
        runs.push(on("storm", d, &args(&["chat", "history", &t])));
        runs.push(on("storm", d, &args(&["chat", "send", &t, "hi"])));
    }
    for h in hexes() {
        let d = &storm_dir;
        for cmd in ["get", "delete"] {
            runs.push(on("storm", d, &args(&["store", cmd, "kv", &h])));
        }
        runs.push(on("storm", d, &args(&["store", "put", "kv", &h, &small])));
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["ping"]), vec![h.clone()]].concat(),
        ));
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["disconnect"]), vec![h.clone()]].concat(),
        ));
        runs.push(on(
            "lnp",
            &lnp_dir,
            &[args(&["connect"]), vec![format!("{h}@127.0.0.1:9")]].concat(),
        ));
        runs.push(on(
            "bp",
            &bp_dir,
            &[args(&["broadcast"]), vec![h.clone()]].concat(),
        ));
        if h.parse::<u32>().is_err() {
            // (66 zeros are height 0, a valid question.)
            runs.push(on(
                "bp",
                &bp_dir,
                &[args(&["header"]), vec![h.clone()]].concat(),
            ));
        }
    }
    // Unknown subcommands and flags are usage errors, one line too.
    runs.push(args(&["lnp", "nope"]));
    runs.push(args(&["bp", "--nope"]));
    runs.push(args(&["storm", "store", "nope"]));
    // An absent key, a value over the limit, a file that is not there: errors, one line.
    runs.push(on(
        "storm",
        &storm_dir,
        &args(&["store", "get", "kv", &key]),
    ));
    runs.push(on(
        "storm",
        &storm_dir,
        &args(&["store", "delete", "kv", &key]),
    ));
    runs.push(on(
        "storm",
        &storm_dir,
        &args(&["store", "put", "kv", &key, &huge]),
    ));
    runs.push(on(
        "storm",
        &storm_dir,
        &args(&["store", "put", "kv", &key, "/nonexistent"]),
    ));
    runs.push(on("storm", &storm_dir, &args(&["assemble", &key, &small])));
    // An index of 2^31 or more; a PSBT file of garbage; an import with nothing on stdin, and
    // one into a data dir whose node has a key.
    runs.push(on(
        "bp",
        &bp_dir,
        &args(&["address", "--index", "2147483648"]),
    ));
    runs.push(on("bp", &bp_dir, &args(&["sign", &small])));
    runs.push(on("bp", &none_dir, &args(&["signer", "import"])));
    runs.push(on("bp", &bp_dir, &args(&["signer", "import"])));
    runs.push(args(&["frobnicate"]));

    for run in &runs {
        fails_cleanly(run);
    }
    assert!(runs.len() > 300, "{} runs", runs.len());
    // Both nodes are still there and nothing restarted.
    for node in [&lnp, &bp, &storm] {
        let info = node.info_json();
        for s in info["services"].as_array().unwrap() {
            assert_eq!(s["restarts"], 0, "{s}");
        }
    }
}
