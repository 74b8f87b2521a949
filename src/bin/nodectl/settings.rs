//! Configuration in layers (the `config` crate): built-in defaults (`config/<node>.toml`,
//! compiled in), then `DATA_DIR/<node>.toml` or `--config FILE`, then `NODECTL_*` environment
//! variables (`__` between levels: `NODECTL_SUPERVISOR__MAX_RESTARTS=5`), then flags.
//! Every bad value is reported with its key and where it came from, before anything is bound.

use config::{Config, Environment, File, FileFormat};
use lnpbp_nodes::actors::bp::BpSettings;
use lnpbp_nodes::actors::lnp::LnpSettings;
use lnpbp_nodes::actors::supervisor::RestartPolicy;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::{limits, BusKind, Endpoint};
use lnpbp_nodes::wire::btc_peer::Timers;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of the environment variables.
pub const ENV_PREFIX: &str = "NODECTL";

fn defaults(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Lnp => include_str!("../../../config/lnp.toml"),
        NodeKind::Bp => include_str!("../../../config/bp.toml"),
        NodeKind::Rgb => include_str!("../../../config/rgb.toml"),
        NodeKind::Storm => include_str!("../../../config/storm.toml"),
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Raw {
    network: Network,
    log_level: String,
    fault_injection: bool,
    endpoints: BTreeMap<String, String>,
    supervisor: RawSupervisor,
    bus: RawBus,
    peers: Option<RawPeers>,
    wire: Option<RawWire>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawWire {
    connect: Vec<String>,
    listen: Vec<String>,
    handshake_timeout_secs: u64,
    inactivity_timeout_secs: u64,
    ping_interval_secs: u64,
    max_peers: usize,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawPeers {
    listen: Vec<String>,
    handshake_timeout_ms: u64,
    ping_interval_secs: u64,
    pong_timeout_secs: u64,
    max_peers: usize,
    max_handshakes: usize,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    max_restarts: u32,
    period_secs: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawBus {
    request_timeout_ms: u64,
}

/// The Bitcoin networks a node can run on.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Mainnet.
    Bitcoin,
    /// Testnet3.
    Testnet,
    /// Testnet4.
    Testnet4,
    /// Signet (the default, as the original nodes).
    Signet,
    /// Regtest.
    Regtest,
}

impl Network {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }
}

/// Values given on the command line (highest layer).
#[derive(Default, Debug)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--network`.
    pub network: Option<Network>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--fault-injection`.
    pub fault_injection: bool,
    /// Bus endpoint flags.
    pub endpoints: Vec<(BusKind, String)>,
    /// `--listen` (LNP: replaces `peers.listen`; BP: `wire.listen`).
    pub listen: Vec<String>,
    /// `--connect` (BP): replaces `wire.connect`.
    pub connect: Vec<String>,
}

/// The validated settings of a node.
#[derive(Debug)]
pub struct Settings {
    /// Network.
    pub network: Network,
    /// Log level or filter.
    pub log_level: String,
    /// Whether `debug crash` is allowed.
    pub fault_injection: bool,
    /// Endpoint of each of the node's buses, in seed order.
    pub endpoints: Vec<(BusKind, Endpoint)>,
    /// Restart intensity.
    pub policy: RestartPolicy,
    /// Request deadline.
    pub request_timeout: Duration,
    /// Peer settings (LNP).
    pub lnp: Option<LnpSettings>,
    /// Bitcoin peer settings (BP).
    pub bp: Option<BpSettings>,
}

/// Loads and validates the settings of `kind` with data dir `data_dir`.
pub fn load(kind: NodeKind, data_dir: &Path, o: &Overrides) -> Result<Settings, String> {
    let mut b = Config::builder().add_source(File::from_str(defaults(kind), FileFormat::Toml));
    let file = match &o.config_file {
        Some(path) if !path.is_file() => {
            return Err(format!("config file {} does not exist", path.display()));
        }
        Some(path) => Some(path.clone()),
        None => Some(data_dir.join(format!("{}.toml", kind.name()))).filter(|p| p.is_file()),
    };
    if let Some(path) = &file {
        b = b.add_source(File::from(path.as_path()).format(FileFormat::Toml));
    }
    b = b.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true),
    );
    let set = |b: config::ConfigBuilder<_>, k: &str, v: String| {
        b.set_override(k, v).map_err(|e| format!("{k}: {e}"))
    };
    if let Some(n) = o.network {
        b = set(b, "network", n.name().to_string())?;
    }
    if let Some(l) = &o.log_level {
        b = set(b, "log_level", l.clone())?;
    }
    if o.fault_injection {
        b = b
            .set_override("fault_injection", true)
            .map_err(|e| e.to_string())?;
    }
    let mut from_flag = BTreeMap::new();
    for (bus, ep) in &o.endpoints {
        if !kind.seed().buses.contains(bus) {
            return Err(format!(
                "-{} ({} bus) is not a bus of the {} node (its buses: {})",
                bus.flag(),
                bus.name().to_uppercase(),
                kind.name(),
                bus_list(kind)
            ));
        }
        from_flag.insert(bus.name(), bus.flag());
        b = set(b, &format!("endpoints.{}", bus.name()), ep.clone())?;
    }
    if !o.listen.is_empty() {
        let key = match kind {
            NodeKind::Lnp => "peers.listen",
            NodeKind::Bp => "wire.listen",
            _ => {
                return Err(format!(
                    "--listen is for the lnp and bp nodes, not {}",
                    kind.name()
                ))
            }
        };
        b = b
            .set_override(key, o.listen.clone())
            .map_err(|e| format!("--listen: {e}"))?;
    }
    if !o.connect.is_empty() {
        if kind != NodeKind::Bp {
            return Err(format!("--connect is for the bp node, not {}", kind.name()));
        }
        b = b
            .set_override("wire.connect", o.connect.clone())
            .map_err(|e| format!("--connect: {e}"))?;
    }
    let cfg = b.build().map_err(|e| format!("configuration: {e}"))?;
    let raw: Raw = cfg
        .clone()
        .try_deserialize()
        .map_err(|e| format!("configuration: {e}"))?;
    let origin = |key: &str| -> String {
        if let Some(flag) = key
            .strip_prefix("endpoints.")
            .and_then(|b| from_flag.get(b))
        {
            return format!("flag -{flag}");
        }
        if (key == "peers.listen" || key == "wire.listen") && !o.listen.is_empty() {
            return "flag --listen".into();
        }
        if key == "wire.connect" && !o.connect.is_empty() {
            return "flag --connect".into();
        }
        let env = format!("{ENV_PREFIX}_{}", key.to_uppercase().replace('.', "__"));
        if std::env::var_os(&env).is_some() {
            return format!("environment variable {env}");
        }
        // Only on an error: read the file layer alone to see whether it sets `key`.
        let in_file = |path: &Path| {
            let layer = Config::builder()
                .add_source(File::from(path).format(FileFormat::Toml))
                .build();
            layer.is_ok_and(|l| l.get_string(key).is_ok() || l.get_table(key).is_ok())
        };
        match &file {
            Some(path) if in_file(path) => path.display().to_string(),
            _ => "built-in defaults".into(),
        }
    };
    let bad =
        |key: &str, why: String| format!("invalid value for `{key}` (from {}): {why}", origin(key));

    let mut endpoints = Vec::new();
    for name in raw.endpoints.keys() {
        if !kind.seed().buses.iter().any(|b| b.name() == name) {
            return Err(bad(
                &format!("endpoints.{name}"),
                format!(
                    "the {} node has no such bus (its buses: {})",
                    kind.name(),
                    bus_list(kind)
                ),
            ));
        }
    }
    for bus in kind.seed().buses {
        let key = format!("endpoints.{}", bus.name());
        let text = raw
            .endpoints
            .get(bus.name())
            .ok_or_else(|| bad(&key, "missing".into()))?;
        let ep = Endpoint::parse(text, data_dir).map_err(|e| bad(&key, e.to_string()))?;
        if !ep.is_local() {
            return Err(bad(
                &key,
                format!("{ep}: TCP buses are not encrypted yet, so only loopback addresses (127.0.0.1, [::1]) may be bound"),
            ));
        }
        if let Some((other, _)) = endpoints
            .iter()
            .find(|(_, e): &&(BusKind, Endpoint)| *e == ep)
        {
            return Err(bad(
                &key,
                format!(
                    "{ep} is already the endpoint of the {} bus",
                    BusKind::name(*other)
                ),
            ));
        }
        endpoints.push((*bus, ep));
    }
    if raw.supervisor.period_secs == 0 {
        return Err(bad("supervisor.period_secs", "must be at least 1".into()));
    }
    let max_ms = limits::REQUEST_TIMEOUT.as_millis() as u64;
    if !(1..=max_ms).contains(&raw.bus.request_timeout_ms) {
        return Err(bad(
            "bus.request_timeout_ms",
            format!("{} is outside 1..={max_ms}", raw.bus.request_timeout_ms),
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
        return Err(bad(
            "log_level",
            format!("`{}` is not a log level or filter", raw.log_level),
        ));
    }
    let lnp = match (&raw.peers, kind) {
        (Some(p), NodeKind::Lnp) => Some(peer_settings(p, &bad)?),
        (None, NodeKind::Lnp) => return Err(bad("peers", "missing".into())),
        (Some(_), _) => {
            return Err(bad(
                "peers",
                format!("the {} node has no Lightning peers", kind.name()),
            ))
        }
        (None, _) => None,
    };
    let bp = match (&raw.wire, kind) {
        (Some(w), NodeKind::Bp) => Some(wire_settings(w, &bad)?),
        (None, NodeKind::Bp) => return Err(bad("wire", "missing".into())),
        (Some(_), _) => {
            return Err(bad(
                "wire",
                format!("the {} node has no Bitcoin peers", kind.name()),
            ))
        }
        (None, _) => None,
    };
    Ok(Settings {
        bp,
        lnp,
        network: raw.network,
        log_level: raw.log_level,
        fault_injection: raw.fault_injection,
        endpoints,
        policy: RestartPolicy {
            max_restarts: raw.supervisor.max_restarts,
            period: Duration::from_secs(raw.supervisor.period_secs),
        },
        request_timeout: Duration::from_millis(raw.bus.request_timeout_ms),
    })
}

fn peer_settings(
    p: &RawPeers,
    bad: &dyn Fn(&str, String) -> String,
) -> Result<LnpSettings, String> {
    let range = |key: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad(key, format!("{v} is outside {lo}..={hi}")))
        }
    };
    for addr in &p.listen {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "peers.listen",
                format!("`{addr}` is not an IP address with a port (e.g. 0.0.0.0:9735)"),
            ));
        }
    }
    Ok(LnpSettings {
        listen: p.listen.clone(),
        act_timeout: Duration::from_millis(range(
            "peers.handshake_timeout_ms",
            p.handshake_timeout_ms,
            100,
            60_000,
        )?),
        ping_interval: Duration::from_secs(range(
            "peers.ping_interval_secs",
            p.ping_interval_secs,
            1,
            3_600,
        )?),
        pong_timeout: Duration::from_secs(range(
            "peers.pong_timeout_secs",
            p.pong_timeout_secs,
            1,
            600,
        )?),
        max_peers: range("peers.max_peers", p.max_peers as u64, 1, 10_000)? as usize,
        max_handshakes: range("peers.max_handshakes", p.max_handshakes as u64, 1, 10_000)? as usize,
    })
}

fn wire_settings(w: &RawWire, bad: &dyn Fn(&str, String) -> String) -> Result<BpSettings, String> {
    let range = |key: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad(key, format!("{v} is outside {lo}..={hi}")))
        }
    };
    for addr in &w.listen {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "wire.listen",
                format!("`{addr}` is not an IP address with a port (e.g. 127.0.0.1:18444)"),
            ));
        }
    }
    for addr in &w.connect {
        if addr.is_empty() || addr.contains(char::is_whitespace) {
            return Err(bad("wire.connect", format!("`{addr}` is not host[:port]")));
        }
    }
    let secs = |key: &str, v: u64, hi: u64| range(key, v, 1, hi).map(Duration::from_secs);
    Ok(BpSettings {
        connect: w.connect.clone(),
        listen: w.listen.clone(),
        timers: Timers {
            handshake: secs("wire.handshake_timeout_secs", w.handshake_timeout_secs, 600)?,
            inactivity: secs(
                "wire.inactivity_timeout_secs",
                w.inactivity_timeout_secs,
                86_400,
            )?,
            ping_interval: secs("wire.ping_interval_secs", w.ping_interval_secs, 3_600)?,
        },
        max_peers: range("wire.max_peers", w.max_peers as u64, 1, 10_000)? as usize,
    })
}

fn bus_list(kind: NodeKind) -> String {
    kind.seed()
        .buses
        .iter()
        .map(|b| format!("-{} {}", b.flag(), b.name().to_uppercase()))
        .collect::<Vec<_>>()
        .join(", ")
}
