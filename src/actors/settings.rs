//! Configuration in layers (the `config` crate): built-in defaults (`config/<node>.toml`,
//! compiled in), then `DATA_DIR/<node>.toml` or `--config FILE`, then `NODECTL_*` environment
//! variables (`__` between levels: `NODECTL_SUPERVISOR__MAX_RESTARTS=5`), then flags.
//! Every bad value is reported with its key and where it came from, before anything is bound.
//!
//! This module reads the keys every node has (`network`, `log_level`, `fault_injection`,
//! `[endpoints]`, `[supervisor]`, `[bus]`). A node's own sections (`[peers]` for LNP, `[wire]`
//! for BP) are read by that node's module through a [`Section`], which names the origin of a
//! bad value the same way.

use super::supervisor::RestartPolicy;
use super::{NodeKind, NodeSettings};
use crate::bus::{limits, BusKind, Endpoint};
use crate::wire::network::Network;
use crate::wire::node_id::NodeId;
use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of the environment variables.
pub const ENV_PREFIX: &str = "NODECTL";

/// The keys every node has.
const GENERIC_KEYS: [&str; 9] = [
    "network",
    "log_level",
    "fault_injection",
    "proxy",
    "always_use_proxy",
    "endpoints",
    "supervisor",
    "bus",
    "rpc",
];

#[derive(Deserialize, Debug)]
struct Raw {
    network: String,
    log_level: String,
    fault_injection: bool,
    proxy: String,
    always_use_proxy: bool,
    endpoints: BTreeMap<String, String>,
    supervisor: RawSupervisor,
    bus: RawBus,
    rpc: RawRpc,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawRpc {
    allow: Vec<String>,
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
    max_requests_per_source: u64,
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
    /// `--rpc-allow KEY` (repeatable): client keys allowed on TCP buses, besides `[rpc] allow`.
    pub rpc_allow: Vec<String>,
    /// `--proxy HOST:PORT`.
    pub proxy: Option<String>,
    /// `--always-use-proxy`.
    pub always_use_proxy: bool,
    /// Node flags that replace a list in the node's section (`--listen`, `--connect`): the flag
    /// name without dashes and its values. Each node says which it takes ([`super::NodeDef`]).
    pub lists: Vec<(&'static str, Vec<String>)>,
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
    /// Requests in flight one source may hold on a bus.
    pub per_source_requests: usize,
    /// Client keys allowed on the node's TCP buses (`[rpc] allow` and `--rpc-allow`).
    pub rpc_allow: Vec<NodeId>,
    /// How P2P dials are made (`proxy`, `always_use_proxy`).
    pub proxy: super::tcp::ProxyConfig,
    /// The node's own settings (its sections), validated by its module.
    pub node: Arc<dyn NodeSettings>,
}

/// A node's view of the configuration: it reads its own sections and reports a bad value with
/// the key and where the value came from.
pub struct Section<'a> {
    cfg: &'a Config,
    origin: &'a dyn Fn(&str) -> String,
}

impl Section<'_> {
    /// Deserializes the table at `key` (a struct with `deny_unknown_fields` names a typo).
    pub fn table<T: DeserializeOwned>(&self, key: &str) -> Result<T, String> {
        match self.cfg.get::<T>(key) {
            Ok(v) => Ok(v),
            Err(config::ConfigError::NotFound(_)) => Err(self.bad(key, "missing".into())),
            Err(e) => Err(format!("configuration: {e} (in `{key}`)")),
        }
    }

    /// The error for a bad value at `key`: `invalid value for `key` (from ORIGIN): why`.
    pub fn bad(&self, key: &str, why: String) -> String {
        format!(
            "invalid value for `{key}` (from {}): {why}",
            (self.origin)(key)
        )
    }

    /// `value` if it is within `lo..=hi`, else the error naming `key`.
    pub fn range(&self, key: &str, value: u64, lo: u64, hi: u64) -> Result<u64, String> {
        if (lo..=hi).contains(&value) {
            Ok(value)
        } else {
            Err(self.bad(key, format!("{value} is outside {lo}..={hi}")))
        }
    }

    /// Seconds at `key`, within `1..=hi`.
    pub fn secs(&self, key: &str, value: u64, hi: u64) -> Result<Duration, String> {
        self.range(key, value, 1, hi).map(Duration::from_secs)
    }

    /// Checks that each of `addrs` (at `key`) is an IP address with a port.
    pub fn socket_addrs(&self, key: &str, addrs: &[String], example: &str) -> Result<(), String> {
        for addr in addrs {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                let shown: String = addr
                    .chars()
                    .take(64)
                    .flat_map(char::escape_default)
                    .collect();
                return Err(self.bad(
                    key,
                    format!("`{shown}` is not an IP address with a port (e.g. {example})"),
                ));
            }
        }
        Ok(())
    }
}

/// Loads and validates the settings of `kind` with data dir `data_dir`.
pub fn load(kind: NodeKind, data_dir: &Path, o: &Overrides) -> Result<Settings, String> {
    let def = kind.def();
    let mut b = Config::builder().add_source(File::from_str(def.defaults, FileFormat::Toml));
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
    if let Some(p) = &o.proxy {
        b = set(b, "proxy", p.clone())?;
    }
    if o.always_use_proxy {
        b = b
            .set_override("always_use_proxy", true)
            .map_err(|e| e.to_string())?;
    }
    let mut from_flag = BTreeMap::new();
    for (bus, ep) in &o.endpoints {
        if !def.seed.buses.contains(bus) {
            return Err(format!(
                "-{} ({} bus) is not a bus of the {} node (its buses: {})",
                bus.flag(),
                bus.name().to_uppercase(),
                kind.name(),
                bus_list(kind)
            ));
        }
        from_flag.insert(
            format!("endpoints.{}", bus.name()),
            format!("-{}", bus.flag()),
        );
        b = set(b, &format!("endpoints.{}", bus.name()), ep.clone())?;
    }
    for (flag, values) in o.lists.iter().filter(|(_, v)| !v.is_empty()) {
        let Some((_, key)) = def.list_flags.iter().find(|(f, _)| f == flag) else {
            let takers: Vec<&str> = NodeKind::ALL
                .into_iter()
                .filter(|k| k.def().list_flags.iter().any(|(f, _)| f == flag))
                .map(NodeKind::name)
                .collect();
            let which = match takers.as_slice() {
                [one] => format!("the {one} node"),
                [init @ .., last] => format!("the {} and {last} nodes", init.join(", ")),
                [] => "no node".into(),
            };
            return Err(format!("--{flag} is for {which}, not {}", kind.name()));
        };
        from_flag.insert(key.to_string(), format!("--{flag}"));
        b = b
            .set_override(*key, values.clone())
            .map_err(|e| format!("--{flag}: {e}"))?;
    }
    let cfg = b.build().map_err(|e| format!("configuration: {e}"))?;
    let origin = |key: &str| -> String {
        if let Some(flag) = from_flag.get(key) {
            return format!("flag {flag}");
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
    let section = Section {
        cfg: &cfg,
        origin: &origin,
    };
    let bad = |key: &str, why: String| section.bad(key, why);

    // Every top-level key is a generic one or a section of this node.
    let top: BTreeMap<String, config::Value> = cfg
        .clone()
        .try_deserialize()
        .map_err(|e| format!("configuration: {e}"))?;
    for key in top.keys() {
        if !GENERIC_KEYS.contains(&key.as_str()) && !def.sections.contains(&key.as_str()) {
            let mut known: Vec<&str> = GENERIC_KEYS.to_vec();
            known.extend(def.sections);
            return Err(format!(
                "configuration: unknown key `{key}` (from {}); the {} node's keys are {}",
                origin(key),
                kind.name(),
                known.join(", ")
            ));
        }
    }
    let raw: Raw = cfg
        .clone()
        .try_deserialize()
        .map_err(|e| format!("configuration: {e}"))?;
    let network = Network::from_name(&raw.network).ok_or_else(|| {
        bad(
            "network",
            format!(
                "`{}` is not one of {}",
                raw.network,
                Network::NAMES.join(", ")
            ),
        )
    })?;

    let mut endpoints = Vec::new();
    for name in raw.endpoints.keys() {
        if !def.seed.buses.iter().any(|b| b.name() == name) {
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
    for bus in def.seed.buses {
        let key = format!("endpoints.{}", bus.name());
        let text = raw
            .endpoints
            .get(bus.name())
            .ok_or_else(|| bad(&key, "missing".into()))?;
        let ep = Endpoint::parse(text, data_dir).map_err(|e| bad(&key, e.to_string()))?;
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
    let most = limits::MAX_PENDING as u64;
    if !(1..=most).contains(&raw.bus.max_requests_per_source) {
        return Err(bad(
            "bus.max_requests_per_source",
            format!("{} is outside 1..={most}", raw.bus.max_requests_per_source),
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
        return Err(bad(
            "log_level",
            format!("`{}` is not a log level or filter", raw.log_level),
        ));
    }
    let mut rpc_allow = Vec::new();
    for (key, from) in raw
        .rpc
        .allow
        .iter()
        .map(|k| (k, origin("rpc.allow")))
        .chain(
            o.rpc_allow
                .iter()
                .map(|k| (k, "flag --rpc-allow".to_string())),
        )
    {
        match NodeId::parse_key(key) {
            Ok(k) => rpc_allow.push(k),
            Err(_) => {
                return Err(format!(
                    "rpc.allow ({from}): `{}` is not a client key (66 hex digits of a public key)",
                    key.escape_debug()
                ))
            }
        }
    }
    let proxy = match raw.proxy.as_str() {
        "" => None,
        p if crate::bus::endpoint::host_port(p).is_some() => Some(p.to_string()),
        p => {
            return Err(bad(
                "proxy",
                format!("`{}` is not HOST:PORT of a SOCKS5 proxy", p.escape_debug()),
            ))
        }
    };
    if raw.always_use_proxy && proxy.is_none() {
        return Err(bad(
            "always_use_proxy",
            "needs a proxy (--proxy HOST:PORT)".into(),
        ));
    }
    let node = (def.settings)(&section)?;
    Ok(Settings {
        rpc_allow,
        proxy: super::tcp::ProxyConfig {
            proxy,
            always: raw.always_use_proxy,
        },
        network,
        log_level: raw.log_level,
        fault_injection: raw.fault_injection,
        endpoints,
        policy: RestartPolicy {
            max_restarts: raw.supervisor.max_restarts,
            period: Duration::from_secs(raw.supervisor.period_secs),
        },
        request_timeout: Duration::from_millis(raw.bus.request_timeout_ms),
        per_source_requests: raw.bus.max_requests_per_source as usize,
        node,
    })
}

fn bus_list(kind: NodeKind) -> String {
    kind.def()
        .seed
        .buses
        .iter()
        .map(|b| format!("-{} {}", b.flag(), b.name().to_uppercase()))
        .collect::<Vec<_>>()
        .join(", ")
}
