//! `nodectl start --node …`: loads the settings, locks the data dir, starts the node's root
//! and runs until SIGINT/SIGTERM or escalation.

use crate::client::data_dir;
use crate::render::hex;
use clap::Args;
use lnpbp_nodes::actors::datadir::DataDir;
use lnpbp_nodes::actors::settings::{self, Overrides};
use lnpbp_nodes::actors::supervisor::Shutdown;
use lnpbp_nodes::actors::{start_node, NodeConfig, NodeKind};
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::network::Network;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum NodeArg {
    Lnp,
    Bp,
    Rgb,
    Storm,
}

impl NodeArg {
    fn kind(self) -> NodeKind {
        match self {
            NodeArg::Lnp => NodeKind::Lnp,
            NodeArg::Bp => NodeKind::Bp,
            NodeArg::Rgb => NodeKind::Rgb,
            NodeArg::Storm => NodeKind::Storm,
        }
    }
}

/// `--network NAME`.
fn network_arg(text: &str) -> Result<Network, String> {
    Network::from_name(text).ok_or_else(|| {
        format!(
            "`{}` is not a network (one of {})",
            crate::client::shown(text),
            Network::NAMES.join(", ")
        )
    })
}

#[derive(Args)]
pub struct StartArgs {
    /// Which node to run.
    #[arg(long, value_enum)]
    node: NodeArg,
    /// Data dir (default ~/.lnp, ~/.bp, ~/.rgb or ~/.storm).
    #[arg(short = 'd', long)]
    data_dir: Option<PathBuf>,
    /// Config file (default DATA_DIR/NODE.toml, e.g. ~/.lnp/lnp.toml, if it exists).
    #[arg(short = 'c', long)]
    config: Option<PathBuf>,
    /// Bitcoin network: bitcoin, testnet, testnet4, signet or regtest.
    #[arg(short = 'n', long, value_parser = network_arg)]
    network: Option<Network>,
    /// Log level or filter (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long)]
    log_level: Option<String>,
    /// Allow the `debug crash <service>` API request.
    #[arg(long)]
    fault_injection: bool,
    /// MSG bus endpoint (LNP: its own). Storm: the MSG bus of the LNP node to join (also
    /// `--lnp`; replaces `lnp.join`).
    #[arg(
        short = 'M',
        long = "msg",
        visible_alias = "lnp",
        value_name = "ENDPOINT"
    )]
    msg: Option<String>,
    /// CTL bus endpoint (LNP, RGB).
    #[arg(short = 'X', long = "ctl", value_name = "ENDPOINT")]
    ctl: Option<String>,
    /// CHNL bus endpoint (LNP).
    #[arg(short = 'C', long = "chnl", value_name = "ENDPOINT")]
    chnl: Option<String>,
    /// API bus endpoint.
    #[arg(short = 'R', long = "api", value_name = "ENDPOINT")]
    api: Option<String>,
    /// BLOCKS bus endpoint (BP).
    #[arg(short = 'N', long = "blocks", value_name = "ENDPOINT")]
    blocks: Option<String>,
    /// SIGN bus endpoint (BP).
    #[arg(short = 'K', long = "sign", value_name = "ENDPOINT")]
    sign: Option<String>,
    /// STORE bus endpoint (Storm). RGB: the STORE of the Storm node that keeps its stock
    /// (replaces `rgb.store`).
    #[arg(short = 'S', long = "store", value_name = "ENDPOINT")]
    store: Option<String>,
    /// STORM bus endpoint (Storm). RGB: the STORM bus of the Storm node that sends and
    /// receives its contracts (replaces `rgb.storm`).
    #[arg(short = 'E', long = "storm", value_name = "ENDPOINT")]
    storm: Option<String>,
    /// Listen for peers on ADDR (LNP: Lightning, replaces `peers.listen`; BP: Bitcoin,
    /// `wire.listen`); repeatable.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Connect to a Bitcoin peer at HOST[:PORT] (BP; repeatable; replaces `wire.connect`).
    #[arg(long, value_name = "HOST[:PORT]")]
    connect: Vec<String>,
    /// The BP node that is the channels' chain (LNP; an endpoint of its API bus, e.g.
    /// `~/.nodectl/bp/api` or NODE_ID@HOST:PORT; replaces `chain.bp`).
    #[arg(long, value_name = "ENDPOINT")]
    bp: Option<String>,
    /// Listen for Bifrost peers on ADDR (LNP; repeatable; replaces `bifrost.listen`).
    #[arg(long, value_name = "ADDR")]
    bifrost_listen: Vec<String>,
    /// Dial peers through this SOCKS5 proxy (Tor: 127.0.0.1:9050): host names, .onion
    /// included, go to it as names; IP addresses too with --always-use-proxy.
    #[arg(long, value_name = "HOST:PORT")]
    proxy: Option<String>,
    /// Never dial a peer directly: every outbound connection goes through --proxy.
    #[arg(long)]
    always_use_proxy: bool,
    /// Allow this client key (66 hex digits) on the node's TCP buses, besides `[rpc] allow`
    /// (repeatable).
    #[arg(long, value_name = "KEY")]
    rpc_allow: Vec<String>,
    /// Download the containers this peer offers without `storm accept` (Storm; a node id;
    /// repeatable; replaces `storm.auto_accept`).
    #[arg(long, value_name = "NODE_ID")]
    auto_accept: Vec<String>,
}

fn init_logging(level: &str) {
    // --log-level > RUST_LOG > config log_level.
    let filter = if std::env::var_os("RUST_LOG").is_some() && level.is_empty() {
        tracing_subscriber::EnvFilter::from_default_env()
    } else {
        tracing_subscriber::EnvFilter::new(level)
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .compact()
        .init();
}

/// Runs a node in the foreground.
/// Raises the soft limit on open files to the hard one (at most 65,536), as bitcoind does: a
/// node takes 1,000 Lightning peers by default, and many systems start processes at 1,024.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct passed, which outlives them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let want = lim.rlim_max.min(65_536);
    if lim.rlim_cur >= want {
        return;
    }
    let was = lim.rlim_cur;
    lim.rlim_cur = want;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::debug!(from = was, to = want, "raised the open-file limit");
    } else {
        tracing::warn!(
            limit = was,
            "could not raise the open-file limit; peers beyond it are refused"
        );
    }
}

pub fn start(args: StartArgs) -> Result<ExitCode, String> {
    let kind = args.node.kind();
    let dir = data_dir(kind, args.data_dir.clone())?;
    // A Storm node has no MSG bus: its -M/--lnp names the LNP node's, which it joins. An RGB
    // node has no STORE or STORM bus: its -S/--store and -E/--storm name a Storm node's.
    let joins_lnp = kind == NodeKind::Storm;
    let own_msg = if joins_lnp { &None } else { &args.msg };
    let attaches = kind == NodeKind::Rgb;
    let (own_store, own_storm) = if attaches {
        (&None, &None)
    } else {
        (&args.store, &args.storm)
    };
    let attach = |v: &Option<String>| -> Vec<String> {
        if attaches {
            v.clone().into_iter().collect()
        } else {
            Vec::new()
        }
    };
    let flags = [
        (BusKind::Msg, own_msg),
        (BusKind::Ctl, &args.ctl),
        (BusKind::Chnl, &args.chnl),
        (BusKind::Api, &args.api),
        (BusKind::Blocks, &args.blocks),
        (BusKind::Sign, &args.sign),
        (BusKind::Store, own_store),
        (BusKind::Storm, own_storm),
    ];
    let overrides = Overrides {
        config_file: args.config.clone(),
        network: args.network,
        log_level: args.log_level.clone(),
        fault_injection: args.fault_injection,
        rpc_allow: args.rpc_allow.clone(),
        proxy: args.proxy.clone(),
        always_use_proxy: args.always_use_proxy,
        endpoints: flags
            .iter()
            .filter_map(|(b, v)| v.as_ref().map(|v| (*b, v.clone())))
            .collect(),
        lists: vec![
            ("listen", args.listen.clone()),
            ("connect", args.connect.clone()),
            ("bifrost-listen", args.bifrost_listen.clone()),
            ("auto-accept", args.auto_accept.clone()),
            ("store", attach(&args.store)),
            ("storm", attach(&args.storm)),
            ("bp", args.bp.clone().into_iter().collect()),
            (
                "lnp",
                if joins_lnp {
                    args.msg.clone().into_iter().collect()
                } else {
                    Vec::new()
                },
            ),
        ],
    };
    let settings = settings::load(kind, &dir, &overrides)?;
    lnpbp_nodes::actors::tcp::set_proxy(settings.proxy.clone());
    let level = match (&args.log_level, std::env::var_os("RUST_LOG")) {
        (Some(l), _) => l.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => settings.log_level.clone(),
    };
    init_logging(&level);
    lnpbp_nodes::guard::install_panic_hook();
    raise_fd_limit();

    let datadir = DataDir::open(&dir).map_err(|e| e.to_string())?;
    let (secret, public) = datadir.node_key().map_err(|e| e.to_string())?;
    let config = NodeConfig {
        kind,
        network: settings.network,
        data_dir: dir.clone(),
        endpoints: settings.endpoints,
        policy: settings.policy,
        request_timeout: settings.request_timeout,
        per_source_requests: settings.per_source_requests,
        fault_injection: settings.fault_injection,
        node_id: public.into(),
        secret,
        rpc_allow: settings.rpc_allow,
        node: settings.node,
    };
    tracing::info!(node = kind.name(), network = %config.network, node_id = %hex(config.node_id),
        data_dir = %dir.display(), fault_injection = config.fault_injection, "starting");

    let zmq = zmq::Context::new();
    let system = actix_rt::System::new();
    let started = system.block_on(async {
        let node = start_node(&config, &zmq)?;
        for (sig, name) in [
            (actix_rt::signal::unix::SignalKind::terminate(), "SIGTERM"),
            (actix_rt::signal::unix::SignalKind::interrupt(), "SIGINT"),
        ] {
            let root = node.root.clone();
            match actix_rt::signal::unix::signal(sig) {
                Ok(mut s) => {
                    actix_rt::spawn(async move {
                        s.recv().await;
                        root.do_send(Shutdown {
                            code: 0,
                            reason: format!("{name} received"),
                        });
                    });
                }
                Err(e) => tracing::error!("cannot watch {name}: {e}"),
            }
        }
        Ok::<(), String>(())
    });
    if let Err(e) = started {
        tracing::error!("cannot start: {e}");
        return Err(e);
    }
    let code = system.run_with_code().map_err(|e| e.to_string())?;
    // Sockets are closed by the bridges; the IPC files go with them. Make sure of the latter
    // even if a bridge could not confirm its stop.
    for (_, ep) in &config.endpoints {
        if let Some(p) = ep.ipc_path() {
            let _ = std::fs::remove_file(p);
        }
    }
    drop(datadir);
    tracing::info!(exit_code = code, "node stopped");
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
