//! `nodectl`: starts a node (`nodectl start --node lnp|bp|rgb|storm`) or talks to a running one
//! (`nodectl <node> info`, ...). Every failure prints one line and exits non-zero.

#[path = "nodectl/settings.rs"]
mod settings;

use bitcoin::hashes::Hash;
use clap::{Args, Parser, Subcommand};
use lnpbp_nodes::actors::datadir::DataDir;
use lnpbp_nodes::actors::supervisor::Shutdown;
use lnpbp_nodes::actors::{start_node, NodeConfig, NodeKind};
use lnpbp_nodes::bus::client::{Client, ClientError};
use lnpbp_nodes::bus::{BusKind, Endpoint};
use lnpbp_nodes::wire::bp_api::{BlockQuery, BlockRef};
use lnpbp_nodes::wire::lnp_api::{Detail, PeerInfo};
use lnpbp_nodes::wire::msg::{Msg, NodeInfo, ServiceEvent};
use settings::{Network, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

macro_rules! emit {
    ($($arg:tt)*) => { emit_line(format_args!($($arg)*)) };
}

/// Exit code of every failure other than an escalation (2).
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "nodectl",
    version,
    about = "Run and control LNP/BP nodes (LNP, BP, RGB, Storm)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a node in the foreground until SIGINT or SIGTERM.
    Start(Box<StartArgs>),
    /// Talk to a running LNP node.
    Lnp(ClientArgs<LnpCmd>),
    /// Talk to a running BP node.
    Bp(ClientArgs<BpCmd>),
    /// Talk to a running RGB node.
    Rgb(ClientArgs<ClientCmd>),
    /// Talk to a running Storm node.
    Storm(ClientArgs<ClientCmd>),
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum NodeArg {
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

#[derive(Args)]
struct StartArgs {
    /// Which node to run.
    #[arg(long, value_enum)]
    node: NodeArg,
    /// Data dir (default ~/.lnp, ~/.bp, ~/.rgb or ~/.storm).
    #[arg(short = 'd', long)]
    data_dir: Option<PathBuf>,
    /// Config file (default DATA_DIR/NODE.toml, e.g. ~/.lnp/lnp.toml, if it exists).
    #[arg(short = 'c', long)]
    config: Option<PathBuf>,
    /// Bitcoin network.
    #[arg(short = 'n', long, value_enum)]
    network: Option<Network>,
    /// Log level or filter (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long)]
    log_level: Option<String>,
    /// Allow the `debug crash <service>` API request.
    #[arg(long)]
    fault_injection: bool,
    /// MSG bus endpoint (LNP).
    #[arg(short = 'M', long = "msg", value_name = "ENDPOINT")]
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
    /// STORE bus endpoint (Storm).
    #[arg(short = 'S', long = "store", value_name = "ENDPOINT")]
    store: Option<String>,
    /// STORM bus endpoint (Storm).
    #[arg(short = 'E', long = "storm", value_name = "ENDPOINT")]
    storm: Option<String>,
    /// Listen for peers on ADDR (LNP: Lightning, replaces `peers.listen`; BP: Bitcoin,
    /// `wire.listen`); repeatable.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Connect to a Bitcoin peer at HOST[:PORT] (BP; repeatable; replaces `wire.connect`).
    #[arg(long, value_name = "HOST[:PORT]")]
    connect: Vec<String>,
}

#[derive(Args)]
struct ClientArgs<C: Subcommand> {
    /// Data dir of the node (default ~/.lnp, ~/.bp, ~/.rgb or ~/.storm).
    #[arg(short = 'd', long, global = true)]
    data_dir: Option<PathBuf>,
    /// API endpoint (default: the node's config, i.e. DATA_DIR/api).
    #[arg(short = 'R', long = "api", value_name = "ENDPOINT", global = true)]
    api: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the node's answer (default 5; 15 for connect and ping).
    #[arg(long, global = true)]
    timeout: Option<f64>,
    #[command(subcommand)]
    cmd: C,
}

#[derive(Subcommand)]
enum BpCmd {
    #[command(flatten)]
    Common(ClientCmd),
    /// The Bitcoin peers: address, direction, user agent, version, start height, ping RTT.
    Peers,
    /// Connect to a Bitcoin peer at HOST:PORT.
    Connect {
        /// The address.
        addr: String,
    },
    /// A header of the best chain by height, or any known header by hash.
    Header {
        /// Height or block hash (hex, as explorers show it).
        block: String,
    },
    /// A block by height or hash, fetched from a peer: raw hex, or a summary with --json.
    Block {
        /// Height or block hash.
        block: String,
    },
    /// Announce a raw transaction (hex) to the peers.
    Broadcast {
        /// The serialized transaction in hex.
        tx: String,
    },
    /// Print each block event (connected, disconnected) as it arrives, until interrupted.
    Watch,
}

#[derive(Subcommand)]
enum LnpCmd {
    #[command(flatten)]
    Common(ClientCmd),
    /// Listen for Lightning peers on ADDR (host:port; port 0 picks one).
    Listen {
        /// The address.
        addr: String,
    },
    /// Connect to a Lightning peer: NODE_ID@HOST[:PORT] (port 9735 by default).
    Connect {
        /// The peer.
        target: String,
    },
    /// Disconnect a peer.
    Disconnect {
        /// Its node id (hex).
        node_id: String,
    },
    /// The connected peers: id, address, direction, features, since, bytes, ping RTT.
    Peers,
    /// Ping a peer and print the round-trip time.
    Ping {
        /// Its node id (hex).
        node_id: String,
        /// Bytes of pong to ask for.
        #[arg(long, default_value_t = 0)]
        bytes: u16,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Node kind, version, network, id, uptime, endpoints and services.
    Info,
    /// Print service events (restarts) as they happen, until interrupted.
    Events,
    /// Fault injection (node started with --fault-injection).
    Debug {
        #[command(subcommand)]
        cmd: DebugCmd,
    },
}

#[derive(Subcommand)]
enum DebugCmd {
    /// Make a service panic inside a handler.
    Crash {
        /// Service name as listed by `info`.
        service: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Start(args) => start(*args),
        Cmd::Lnp(a) => lnp_client(a),
        Cmd::Bp(a) => bp_client(a),
        Cmd::Rgb(a) => client(NodeKind::Rgb, a),
        Cmd::Storm(a) => client(NodeKind::Storm, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodectl: error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn data_dir(kind: NodeKind, given: Option<PathBuf>) -> Result<PathBuf, String> {
    let dir = match given {
        Some(d) => d,
        None => {
            let home = std::env::var_os("HOME").ok_or("HOME is not set; use --data-dir")?;
            PathBuf::from(home).join(kind.default_data_dir().trim_start_matches("~/"))
        }
    };
    Ok(if dir.is_absolute() {
        dir
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(dir)
    })
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

fn start(args: StartArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let kind = args.node.kind();
    let dir = data_dir(kind, args.data_dir.clone())?;
    let flags = [
        (BusKind::Msg, &args.msg),
        (BusKind::Ctl, &args.ctl),
        (BusKind::Chnl, &args.chnl),
        (BusKind::Api, &args.api),
        (BusKind::Blocks, &args.blocks),
        (BusKind::Sign, &args.sign),
        (BusKind::Store, &args.store),
        (BusKind::Storm, &args.storm),
    ];
    let overrides = Overrides {
        config_file: args.config.clone(),
        network: args.network,
        log_level: args.log_level.clone(),
        fault_injection: args.fault_injection,
        endpoints: flags
            .iter()
            .filter_map(|(b, v)| v.as_ref().map(|v| (*b, v.clone())))
            .collect(),
        listen: args.listen.clone(),
        connect: args.connect.clone(),
    };
    let settings = settings::load(kind, &dir, &overrides)?;
    let level = match (&args.log_level, std::env::var_os("RUST_LOG")) {
        (Some(l), _) => l.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => settings.log_level.clone(),
    };
    init_logging(&level);
    lnpbp_nodes::guard::install_panic_hook();

    let datadir = DataDir::open(&dir)?;
    let (secret, public) = datadir.node_key()?;
    let config = NodeConfig {
        kind,
        network: settings.network.name().to_string(),
        data_dir: dir.clone(),
        endpoints: settings.endpoints,
        policy: settings.policy,
        request_timeout: settings.request_timeout,
        fault_injection: settings.fault_injection,
        node_id: public.serialize(),
        secret,
        lnp: settings.lnp,
        bp: settings.bp,
    };
    tracing::info!(node = kind.name(), network = %config.network, node_id = %hex(&config.node_id),
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
        return Err(e.into());
    }
    let code = system.run_with_code()?;
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

fn api_endpoint<C: Subcommand>(kind: NodeKind, args: &ClientArgs<C>) -> Result<Endpoint, String> {
    let dir = data_dir(kind, args.data_dir.clone())?;
    if let Some(api) = &args.api {
        return Endpoint::parse(api, &dir).map_err(|e| format!("-R: {e}"));
    }
    let s = settings::load(kind, &dir, &Overrides::default())?;
    s.endpoints
        .into_iter()
        .find(|(b, _)| *b == BusKind::Api)
        .map(|(_, e)| e)
        .ok_or_else(|| "no API endpoint configured".into())
}

/// Connects a client to the node's API; returns it with the request timeout.
fn connect_api<C: Subcommand>(
    kind: NodeKind,
    args: &ClientArgs<C>,
    default_timeout: f64,
) -> Result<(Client, Duration), Box<dyn std::error::Error>> {
    let t = args.timeout.unwrap_or(default_timeout);
    if !(t > 0.0 && t < 3600.0) {
        return Err("--timeout must be between 0 and 3600 seconds".into());
    }
    let endpoint = api_endpoint(kind, args)?;
    let zmq = zmq::Context::new();
    Ok((
        Client::connect(&zmq, &endpoint)?,
        Duration::from_secs_f64(t),
    ))
}

fn progress(p: &str) {
    eprintln!("... {p}");
}

fn client(
    kind: NodeKind,
    args: ClientArgs<ClientCmd>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (mut client, timeout) = connect_api(kind, &args, 5.0)?;
    common(kind, &mut client, timeout, args.cmd, args.json)
}

fn common(
    kind: NodeKind,
    client: &mut Client,
    timeout: Duration,
    cmd: ClientCmd,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manager = kind.seed().manager_id.clone();
    let args_json = json;
    match cmd {
        ClientCmd::Info => match client.request(&manager, Msg::GetInfo, timeout, progress)? {
            Msg::NodeInfo(info) => print_info(&info, args_json),
            other => return Err(unexpected(&other).into()),
        },
        ClientCmd::Debug {
            cmd: DebugCmd::Crash { service },
        } => {
            let reply = client.request(&manager, Msg::DebugCrash { service }, timeout, progress)?;
            print_success(&reply, args_json)?;
        }
        ClientCmd::Events => return events(client, &manager, timeout, args_json),
    }
    Ok(ExitCode::SUCCESS)
}

fn node_id_arg(text: &str) -> Result<[u8; 33], String> {
    let bytes = (text.len() == 66)
        .then(|| {
            (0..66)
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .ok_or_else(|| format!("`{text}` is not a node id (66 hex digits)"))?;
    bitcoin::secp256k1::PublicKey::from_slice(&bytes)
        .map_err(|_| format!("`{text}` is not a valid public key"))?;
    Ok(bytes.try_into().expect("33 bytes"))
}

fn lnp_client(args: ClientArgs<LnpCmd>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let kind = NodeKind::Lnp;
    let slow = matches!(args.cmd, LnpCmd::Connect { .. } | LnpCmd::Ping { .. });
    let (mut client, timeout) = connect_api(kind, &args, if slow { 15.0 } else { 5.0 })?;
    let lnpd = kind.seed().manager_id.clone();
    let json = args.json;
    let request = match args.cmd {
        LnpCmd::Common(cmd) => return common(kind, &mut client, timeout, cmd, json),
        LnpCmd::Listen { addr } => Msg::Listen { addr },
        LnpCmd::Connect { target } => {
            let (id, addr) = target
                .split_once('@')
                .ok_or_else(|| format!("`{target}`: expected NODE_ID@HOST[:PORT]"))?;
            Msg::Connect {
                node_id: node_id_arg(id)?,
                addr: addr.to_string(),
            }
        }
        LnpCmd::Disconnect { node_id } => Msg::Disconnect {
            node_id: node_id_arg(&node_id)?,
        },
        LnpCmd::Peers => Msg::ListPeers,
        LnpCmd::Ping { node_id, bytes } => Msg::PingPeer {
            node_id: node_id_arg(&node_id)?,
            num_pong_bytes: bytes,
        },
    };
    match client.request(&lnpd, request, timeout, progress)? {
        Msg::PeerList(peers) => print_peers(&peers, json),
        Msg::PeerPong { rtt_us } => {
            if json {
                emit!("{}", serde_json::json!({ "rtt_us": rtt_us }));
            } else {
                emit!("pong in {}", rtt_text(Some(rtt_us)));
            }
        }
        other => print_success(&other, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn block_query(text: &str) -> Result<BlockQuery, String> {
    if let Ok(h) = text.parse::<u32>() {
        return Ok(BlockQuery::Height(h));
    }
    let hash: bitcoin::BlockHash = text
        .parse()
        .map_err(|_| format!("`{text}` is neither a height nor a block hash"))?;
    Ok(BlockQuery::Hash(hash.to_byte_array()))
}

fn block_json(b: &BlockRef, connected: Option<bool>) -> serde_json::Value {
    let header: bitcoin::block::Header =
        bitcoin::consensus::deserialize(&b.header).expect("80-byte header from the node");
    let mut v = serde_json::json!({
        "height": b.height,
        "hash": bitcoin::BlockHash::from_byte_array(b.hash).to_string(),
        "prev": header.prev_blockhash.to_string(),
        "time": header.time,
        "bits": format!("{:08x}", header.bits.to_consensus()),
        "header": hex(&b.header),
    });
    if let Some(c) = connected {
        v["event"] = serde_json::json!(if c {
            "block_connected"
        } else {
            "block_disconnected"
        });
    }
    v
}

fn bp_client(args: ClientArgs<BpCmd>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let kind = NodeKind::Bp;
    let slow = matches!(args.cmd, BpCmd::Connect { .. } | BpCmd::Block { .. });
    let json = args.json;
    if let BpCmd::Watch = args.cmd {
        return watch(&args);
    }
    let (mut client, timeout) = connect_api(kind, &args, if slow { 15.0 } else { 5.0 })?;
    let bpd = kind.seed().manager_id.clone();
    let request = match args.cmd {
        BpCmd::Common(cmd) => return common(kind, &mut client, timeout, cmd, json),
        BpCmd::Peers => Msg::BtcPeers,
        BpCmd::Connect { addr } => Msg::BtcConnect { addr },
        BpCmd::Header { block } => Msg::GetHeader(block_query(&block)?),
        BpCmd::Block { block } => Msg::GetBlock(block_query(&block)?),
        BpCmd::Broadcast { tx } => Msg::Broadcast {
            tx: unhex(&tx).ok_or("the transaction must be hex")?,
        },
        BpCmd::Watch => unreachable!("handled above"),
    };
    match client.request(&bpd, request, timeout, progress)? {
        Msg::BtcPeerList(peers) if json => {
            let list: Vec<_> = peers
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "addr": p.addr, "direction": if p.outbound { "outbound" } else { "inbound" },
                        "user_agent": p.user_agent, "version": p.version,
                        "start_height": p.start_height, "ping_rtt_us": p.ping_rtt_us,
                    })
                })
                .collect();
            emit!("{}", serde_json::Value::Array(list));
        }
        Msg::BtcPeerList(peers) => {
            if peers.is_empty() {
                emit!("no peers");
            }
            for p in peers {
                let rtt = rtt_text(p.ping_rtt_us);
                let dir = if p.outbound { "outbound" } else { "inbound" };
                emit!(
                    "{} {dir} {} version {} start height {} rtt {rtt}",
                    p.addr,
                    p.user_agent,
                    p.version,
                    p.start_height
                );
            }
        }
        Msg::HeaderInfo(b) if json => emit!("{}", block_json(&b, None)),
        Msg::HeaderInfo(b) => emit!("{}", hex(&b.header)),
        Msg::BlockData { height, hash, raw } => {
            let hash = bitcoin::BlockHash::from_byte_array(hash);
            if json {
                let block: bitcoin::Block = bitcoin::consensus::deserialize(&raw)
                    .map_err(|e| format!("the node sent a bad block: {e}"))?;
                emit!(
                    "{}",
                    serde_json::json!({
                        "height": height, "hash": hash.to_string(),
                        "computed_hash": block.block_hash().to_string(),
                        "prev": block.header.prev_blockhash.to_string(),
                        "time": block.header.time, "tx_count": block.txdata.len(),
                        "size": raw.len(),
                        "txids": block.txdata.iter().map(|t| t.compute_txid().to_string()).collect::<Vec<_>>(),
                    })
                );
            } else {
                emit!("{}", hex(&raw));
            }
        }
        other => print_success(&other, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `nodectl bp watch`: subscribes on the BLOCKS bus and prints each event.
fn watch(args: &ClientArgs<BpCmd>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let kind = NodeKind::Bp;
    let dir = data_dir(kind, args.data_dir.clone())?;
    let s = settings::load(kind, &dir, &Overrides::default())?;
    let blocks = s
        .endpoints
        .into_iter()
        .find(|(b, _)| *b == BusKind::Blocks)
        .map(|(_, e)| e)
        .ok_or("no BLOCKS endpoint configured")?;
    let timeout = Duration::from_secs_f64(args.timeout.unwrap_or(5.0));
    let zmq = zmq::Context::new();
    let mut client = Client::connect(&zmq, &blocks)?;
    let bpd = kind.seed().manager_id.clone();
    let reply = client.request(&bpd, Msg::SubscribeBlocks, timeout, |_| {})?;
    print_success(&reply, args.json)?;
    // Re-subscribing after a quiet spell proves the node is alive and renews a subscription that
    // a reconnect lost (as `events` does); events keep printing meanwhile.
    let mut probe: Option<(u64, Instant)> = None;
    loop {
        let wait = match probe {
            Some((_, deadline)) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(5),
        };
        match client.recv(wait) {
            Ok(env) => match env.msg {
                Msg::BlockConnected(b) | Msg::BlockDisconnected(b) => {
                    let connected = matches!(env.msg, Msg::BlockConnected(_));
                    if args.json {
                        emit!("{}", block_json(&b, Some(connected)));
                    } else {
                        let hash = bitcoin::BlockHash::from_byte_array(b.hash);
                        let what = if connected {
                            "connected"
                        } else {
                            "disconnected"
                        };
                        emit!("{what:<12} {} {hash}", b.height);
                    }
                }
                _ if probe.is_some_and(|(id, _)| id == env.request_id) => probe = None,
                _ => {}
            },
            Err(ClientError::Timeout(_)) if probe.is_some() => {
                return Err("node stopped answering".into());
            }
            Err(ClientError::Timeout(_)) => {
                let id = client.send(&bpd, Msg::SubscribeBlocks)?;
                probe = Some((id, Instant::now() + timeout));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn print_peers(peers: &[PeerInfo], json: bool) {
    if json {
        let list: Vec<_> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "node_id": hex(&p.node_id), "addr": p.addr,
                    "direction": p.direction.as_str(), "features": hex(&p.features),
                    "connected_since": p.connected_since, "bytes_in": p.bytes_in,
                    "bytes_out": p.bytes_out, "ping_rtt_us": p.ping_rtt_us,
                    "service": p.service,
                })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(list));
        return;
    }
    if peers.is_empty() {
        emit!("no peers");
    }
    for p in peers {
        let rtt = rtt_text(p.ping_rtt_us);
        emit!(
            "{} {} {} features {} since {} in {} B out {} B rtt {}",
            hex(&p.node_id),
            p.addr,
            p.direction.as_str(),
            if p.features.is_empty() {
                "-".into()
            } else {
                hex(&p.features)
            },
            p.connected_since,
            p.bytes_in,
            p.bytes_out,
            rtt
        );
    }
}

fn unexpected(msg: &Msg) -> String {
    format!("unexpected reply type {:#06x}", msg.type_id())
}

fn print_success(reply: &Msg, json: bool) -> Result<(), String> {
    let Msg::Success(text) = reply else {
        return Err(unexpected(reply));
    };
    if json {
        emit!("{}", serde_json::json!({ "ok": true, "message": text }));
    } else if let Some(t) = text {
        emit!("{t}");
    }
    Ok(())
}

fn events(
    client: &mut Client,
    manager: &lnpbp_nodes::wire::msg::ServiceId,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let reply = client.request(manager, Msg::Subscribe, timeout, |_| {})?;
    print_success(&reply, json)?;
    // After this long without a message, subscribe again: it proves the node is alive (the
    // command never waits on a dead node) and renews a subscription that a reconnect lost.
    let quiet = Duration::from_secs(5);
    let mut probe: Option<(u64, Instant)> = None;
    loop {
        let wait = match probe {
            Some((_, deadline)) => deadline.saturating_duration_since(Instant::now()),
            None => quiet,
        };
        match client.recv(wait) {
            Ok(env) => match env.msg {
                Msg::ServiceEvent(ev) => print_event(&ev, json),
                _ if probe.is_some_and(|(id, _)| id == env.request_id) => probe = None,
                _ => {}
            },
            Err(ClientError::Timeout(_)) if probe.is_some() => {
                return Err(format!(
                    "node stopped answering (no reply within {:.1} s)",
                    timeout.as_secs_f64()
                )
                .into());
            }
            Err(ClientError::Timeout(_)) => {
                let id = client.send(manager, Msg::Subscribe)?;
                probe = Some((id, Instant::now() + timeout));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn print_event(ev: &ServiceEvent, json: bool) {
    if json {
        emit!(
            "{}",
            serde_json::json!({
                "service": ev.service, "state": ev.state.as_str(),
                "restarts": ev.restarts, "cause": ev.cause,
            })
        );
    } else {
        let cause = ev
            .cause
            .as_deref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        emit!(
            "{} {} (restarts {}){cause}",
            ev.service,
            ev.state.as_str(),
            ev.restarts
        );
    }
}

/// Writes one line to stdout. A reader that went away (`nodectl lnp info | head`) ends the
/// client quietly with success instead of a panic.
fn emit_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nodectl: error: cannot write to stdout: {e}");
        std::process::exit(EXIT_FAILURE as i32);
    }
}

fn hex(bytes: &[u8]) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(bytes)
}

/// A round-trip time for people: milliseconds with three decimals, or `-` if none yet.
fn rtt_text(us: Option<u64>) -> String {
    us.map(|us| format!("{:.3} ms", us as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn print_info(info: &NodeInfo, json: bool) {
    if json {
        let services: Vec<_> = info
            .services
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "state": s.state.as_str(),
                    "restarts": s.restarts, "last_failure": s.last_failure,
                })
            })
            .collect();
        let endpoints: Vec<_> = info
            .endpoints
            .iter()
            .map(|e| serde_json::json!({ "bus": e.bus, "endpoint": e.endpoint }))
            .collect();
        let mut v = serde_json::json!({
            "node": info.node, "version": info.version, "network": info.network,
            "node_id": hex(&info.node_id), "uptime_s": info.uptime_s,
            "endpoints": endpoints, "services": services,
        });
        for (key, value) in &info.details {
            v[key.as_str()] = match value {
                Detail::U64(n) => serde_json::json!(n),
                Detail::Text(t) => serde_json::json!(t),
                Detail::List(l) => serde_json::json!(l),
            };
        }
        emit!("{v}");
        return;
    }
    emit!("node       {} (nodectl {})", info.node, info.version);
    emit!("network    {}", info.network);
    emit!("node id    {}", hex(&info.node_id));
    emit!("uptime     {} s", info.uptime_s);
    for (key, value) in &info.details {
        let text = match value {
            Detail::U64(n) => n.to_string(),
            Detail::Text(t) => t.clone(),
            Detail::List(l) if l.is_empty() => "-".into(),
            Detail::List(l) => l.join(", "),
        };
        emit!("{key:<10} {text}");
    }
    emit!("endpoints");
    for e in &info.endpoints {
        emit!("  {:<8} {}", e.bus, e.endpoint);
    }
    emit!(
        "services   {:<16} {:<11} {:>8}  last failure",
        "",
        "state",
        "restarts"
    );
    for s in &info.services {
        emit!(
            "  {:<24} {:<11} {:>8}  {}",
            s.name,
            s.state.as_str(),
            s.restarts,
            s.last_failure.as_deref().unwrap_or("-")
        );
    }
}
