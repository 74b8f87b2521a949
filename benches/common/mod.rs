//! Shared bits of the benchmarks: medians over alternating samples.
#![allow(dead_code)]

pub mod bcoin;
#[path = "../../tests/common/ldk.rs"]
pub mod ldk;

/// Median of a list of figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Number of samples: `BENCH_SAMPLES` or `default`.
pub fn samples(default: usize) -> usize {
    std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Starts `nodectl start --node KIND --log-level warn --data-dir DIR EXTRA…` and waits until its
/// API socket (bound last, after every other bus) accepts connections.
pub fn start_node(kind: &str, dir: &std::path::Path, extra: &[&str]) -> std::process::Child {
    start_node_env(kind, dir, extra, &[])
}

/// [`start_node`] with environment variables (e.g. `NODECTL_STORM__WINDOW`).
pub fn start_node_env(
    kind: &str,
    dir: &std::path::Path,
    extra: &[&str],
    env: &[(String, String)],
) -> std::process::Child {
    let node = std::process::Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["start", "--node", kind, "--log-level", "warn"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        lnpbp_nodes::bus::socket::wait_for_ipc(
            &dir.join("api"),
            std::time::Duration::from_secs(30)
        ),
        "node did not start"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    node
}

/// `nodectl ARGS --data-dir DIR --json`: its stdout (the command must succeed).
pub fn nodectl(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `nodectl storm ARGS --data-dir DIR --json`: its stdout (the command must succeed).
pub fn storm_cli(dir: &std::path::Path, args: &[&str]) -> String {
    let mut a = vec!["storm"];
    a.extend_from_slice(args);
    nodectl(dir, &a)
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `info` detail `key` of the BP node behind `c`.
pub fn bp_detail(
    c: &mut lnpbp_nodes::bus::client::Client,
    key: &str,
) -> Option<lnpbp_nodes::wire::api::Detail> {
    use lnpbp_nodes::wire::api::{Msg, ServiceId};
    let Ok(Msg::NodeInfo(info)) = c.request(
        &ServiceId::Bpd,
        Msg::GetInfo,
        std::time::Duration::from_secs(5),
        |_| {},
    ) else {
        panic!("info")
    };
    info.details
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}
