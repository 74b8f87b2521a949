//! The shared API client of every node's commands: the client flags, connecting, one request
//! with its timeout and progress lines, the subscription loop (`events`, `bp watch`), and the
//! validation of arguments (text, hex, node ids, timeouts), so that no argument can panic.

use clap::{Args, Subcommand};
use lnpbp_nodes::actors::settings::{self, Overrides};
use lnpbp_nodes::actors::NodeKind;
pub use lnpbp_nodes::bus::client::Step;
use lnpbp_nodes::bus::client::{Client, ClientError, Remote};
use lnpbp_nodes::bus::{BusKind, Endpoint};
use lnpbp_nodes::storage::storm::StormClient;
use lnpbp_nodes::wire::api::{Envelope, Msg, ServiceId};
use lnpbp_nodes::wire::node_id::NodeId;
use std::path::PathBuf;
use std::time::Duration;

/// Default seconds to wait for a reply.
pub const TIMEOUT: f64 = 5.0;
/// Default for requests that wait on a peer (connect, ping, block).
pub const SLOW_TIMEOUT: f64 = 15.0;
/// Longest `--timeout`.
const MAX_TIMEOUT: f64 = 3600.0;

/// The flags every client command takes.
#[derive(Args)]
pub struct ClientArgs<C: Subcommand> {
    /// Data dir of the node (default ~/.lnp, ~/.bp, ~/.rgb or ~/.storm).
    #[arg(short = 'd', long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// API endpoint (default: the node's config, i.e. DATA_DIR/api).
    #[arg(short = 'R', long = "api", value_name = "ENDPOINT", global = true)]
    pub api: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Talk to a node on another machine over its encrypted TCP API:
    /// `[bronze://]<node id>@<host>:<port>` (this client's key must be on its allow-list).
    #[arg(long, global = true, value_name = "NODE_ID@HOST:PORT")]
    pub remote: Option<String>,
    /// The client key file for --remote (default ~/.config/nodectl/client.key, created on
    /// first use).
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Reach --remote through this SOCKS5 proxy (Tor: 127.0.0.1:9050); the host is sent to the
    /// proxy as a name, never resolved here.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub proxy: Option<String>,
    /// Seconds to wait for the node's answer (default 5; 15 for connect, ping and block).
    #[arg(long, global = true, value_parser = timeout_arg)]
    pub timeout: Option<Duration>,
    #[command(subcommand)]
    pub cmd: C,
}

/// How a reply is shown: (reply, json).
pub type Render = Box<dyn FnOnce(Msg, bool) -> Result<(), String>>;

/// What a command declares: its request, its default timeout and its rendering.
pub struct Request {
    /// The message, to the node's manager.
    pub msg: Msg,
    /// Seconds to wait unless `--timeout` says otherwise.
    pub timeout: f64,
    /// Shows the final reply.
    pub render: Render,
    /// Another service than the manager (e.g. `channeld`).
    pub dst: Option<ServiceId>,
}

impl Request {
    /// A request answered within the default timeout.
    pub fn new(msg: impl Into<Msg>, render: Render) -> Request {
        Request {
            msg: msg.into(),
            timeout: TIMEOUT,
            render,
            dst: None,
        }
    }

    /// The same request to service `dst`.
    pub fn to(mut self, dst: ServiceId) -> Request {
        self.dst = Some(dst);
        self
    }

    /// The same request with a longer default timeout (it waits on a peer).
    pub fn slow(mut self) -> Request {
        self.timeout = SLOW_TIMEOUT;
        self
    }
}

/// The data dir of a node: the flag, else the default under `$HOME`, made absolute.
pub fn data_dir(kind: NodeKind, given: Option<PathBuf>) -> Result<PathBuf, String> {
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

/// The endpoint of `bus` of the node the flags point at (`-R` for the API, else the config).
fn endpoint<C: Subcommand>(
    kind: NodeKind,
    args: &ClientArgs<C>,
    bus: BusKind,
) -> Result<Endpoint, String> {
    let dir = data_dir(kind, args.data_dir.clone())?;
    if let (Some(api), BusKind::Api) = (&args.api, bus) {
        return Endpoint::parse(api, &dir).map_err(|e| format!("-R: {e}"));
    }
    let s = settings::load(kind, &dir, &Overrides::default())?;
    s.endpoints
        .into_iter()
        .find(|(b, _)| *b == bus)
        .map(|(_, e)| e)
        .ok_or_else(|| format!("no {} endpoint configured", bus.name().to_uppercase()))
}

/// A connected client.
pub struct Session {
    client: Client,
    manager: ServiceId,
    timeout: Duration,
    /// Whether it is a remote session (its timeouts get a hint).
    remote: bool,
}

/// The client key file: `--key`, else `~/.config/nodectl/client.key`.
pub fn key_path(given: Option<&PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set; use --key FILE")?;
    Ok(PathBuf::from(home).join(".config/nodectl/client.key"))
}

/// Loads the client key, creating it (mode 0600, in a directory of mode 0700) on first use.
pub fn client_key(
    given: Option<&PathBuf>,
) -> Result<(bitcoin::secp256k1::SecretKey, NodeId), String> {
    use std::os::unix::fs::DirBuilderExt;
    let path = key_path(given)?;
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let (secret, public, created) = lnpbp_nodes::actors::datadir::key_file(&path)?;
    if created {
        eprintln!("created a new client key in {}", path.display());
    }
    Ok((secret, NodeId::from(public)))
}

/// `--proxy`: `host:port`.
pub fn proxy_arg(text: &str) -> Result<String, String> {
    let ok = lnpbp_nodes::bus::endpoint::host_port(text).is_some();
    if !ok || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("--proxy `{}` is not HOST:PORT", shown(text)));
    }
    Ok(text.to_string())
}

impl Session {
    /// Connects to `bus` of the node; `default_timeout` unless `--timeout` was given.
    pub fn open<C: Subcommand>(
        kind: NodeKind,
        args: &ClientArgs<C>,
        bus: BusKind,
        default_timeout: f64,
    ) -> Result<Session, String> {
        let timeout = args
            .timeout
            .unwrap_or_else(|| Duration::from_secs_f64(default_timeout));
        let zmq = zmq::Context::new();
        let manager = kind.seed().manager_id.clone();
        if let Some(r) = &args.remote {
            let remote = Remote::parse(r).map_err(|e| format!("--remote: {e}"))?;
            let (key, _) = client_key(args.key.as_ref())?;
            let proxy = args.proxy.as_deref().map(proxy_arg).transpose()?;
            let client = Client::connect_remote(&zmq, &remote, &key, proxy.as_deref(), timeout)
                .map_err(|e| e.to_string())?;
            return Ok(Session {
                client,
                manager,
                timeout,
                remote: true,
            });
        }
        if args.proxy.is_some() {
            return Err("--proxy is for --remote".into());
        }
        let endpoint = endpoint(kind, args, bus)?;
        let client = Client::connect(&zmq, &endpoint).map_err(|e| e.to_string())?;
        Ok(Session {
            client,
            manager,
            timeout,
            remote: false,
        })
    }

    /// Sends `msg` to the manager and waits for the final reply (progress goes to stderr).
    pub fn request(&mut self, msg: Msg) -> Result<Msg, String> {
        let manager = self.manager.clone();
        self.request_to(&manager, msg)
    }

    /// Sends `msg` to `dst` (not the manager) and waits for the final reply.
    pub fn request_to(&mut self, dst: &ServiceId, msg: Msg) -> Result<Msg, String> {
        let progress = |p: &str| eprintln!("... {p}");
        let remote = self.remote;
        self.client
            .request(dst, msg, self.timeout, progress)
            .map_err(|e| match e {
                // A node answers nothing to a key it does not allow (docs/API.md).
                ClientError::Timeout(_) if remote => format!(
                    "{e} after the encrypted handshake: is this client's key (`nodectl key \
                     show`) on the node's allow-list (`nodectl <node> rpc allow KEY` there)?"
                ),
                e => e.to_string(),
            })
    }

    /// The Storm node this session talks to (`nodectl storm`).
    pub fn storm(&mut self) -> StormClient<'_> {
        StormClient::new(&mut self.client, self.timeout)
    }

    /// Subscribes with `subscribe` (printing its reply) and hands every other message to
    /// `on_event` (true: it was one of the events) until interrupted.
    pub fn follow(
        &mut self,
        subscribe: Msg,
        json: bool,
        mut on_event: impl FnMut(&Envelope) -> bool,
    ) -> Result<(), String> {
        let reply = self.request(subscribe.clone())?;
        crate::render::success(reply, json)?;
        self.follow_after(subscribe, |env| {
            if on_event(env) {
                Step::Event
            } else {
                Step::Other
            }
        })
    }

    /// Follows a subscription that `subscribe` makes anew for each renewal; `on_event` sees
    /// every message, the first reply included.
    pub fn follow_with(
        &mut self,
        subscribe: impl FnMut() -> Msg,
        on_event: impl FnMut(&Envelope) -> Step,
    ) -> Result<(), String> {
        let manager = self.manager.clone();
        self.client
            .follow_with(&manager, subscribe, FOLLOW_QUIET, self.timeout, on_event)
            .map_err(follow_error)
    }

    /// The events after a subscription ([`Client::follow`]): after [`FOLLOW_QUIET`] it
    /// subscribes again, which proves the node is alive and renews a subscription a reconnect
    /// lost.
    fn follow_after(
        &mut self,
        subscribe: Msg,
        on_event: impl FnMut(&Envelope) -> Step,
    ) -> Result<(), String> {
        let manager = self.manager.clone();
        self.client
            .follow(&manager, subscribe, FOLLOW_QUIET, self.timeout, on_event)
            .map_err(follow_error)
    }
}

/// How long a followed subscription may be quiet before it is renewed (and the node proves it
/// is alive).
pub const FOLLOW_QUIET: Duration = Duration::from_secs(5);

/// What went wrong while following notifications, for people: a timeout is the node that
/// stopped answering.
pub fn follow_error(e: ClientError) -> String {
    match e {
        ClientError::Timeout(t) => format!(
            "node stopped answering (no reply within {:.1} s)",
            t.as_secs_f64()
        ),
        e => e.to_string(),
    }
}

/// Runs one declared request against the node's API.
pub fn run<C: Subcommand>(
    kind: NodeKind,
    args: &ClientArgs<C>,
    req: Request,
) -> Result<(), String> {
    let mut s = Session::open(kind, args, BusKind::Api, req.timeout)?;
    let reply = match &req.dst {
        Some(dst) => s.request_to(dst, req.msg)?,
        None => s.request(req.msg)?,
    };
    (req.render)(reply, args.json)
}

// ---- argument validation: every check returns a one-line error, none panics ----

/// `--timeout`: seconds, more than 0 and at most 3600 (rejects negative, NaN, infinite).
pub fn timeout_arg(text: &str) -> Result<Duration, String> {
    let t: f64 = text
        .parse()
        .map_err(|_| format!("`{}` is not a number of seconds", shown(text)))?;
    if !(t > 0.0 && t <= MAX_TIMEOUT) {
        return Err(format!(
            "must be more than 0 and at most {MAX_TIMEOUT} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(t))
}

/// A text argument: not empty, printable ASCII, at most `max` bytes.
pub fn text_arg(what: &str, text: &str, max: usize) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{what} `{}` must be printable ASCII without spaces",
            shown(text)
        ));
    }
    if text.len() > max {
        return Err(format!(
            "{what} is {} bytes long, more than {max}",
            text.len()
        ));
    }
    Ok(text.to_string())
}

/// An address argument (`host:port` or `host`).
pub fn addr_arg(text: &str) -> Result<String, String> {
    text_arg("the address", text, 255)
}

/// Hex bytes (even length, hex digits only; non-ASCII input is refused, not sliced).
pub fn hex_arg(what: &str, text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let bad = || format!("{what} `{}` is not hex", shown(text));
    if text.is_empty() || !text.len().is_multiple_of(2) || !text.is_ascii() {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)
}

/// A node id: 66 hex digits of a valid compressed public key.
pub fn node_id_arg(text: &str) -> Result<NodeId, String> {
    let id: NodeId = text
        .parse()
        .map_err(|_| format!("`{}` is not a node id (66 hex digits)", shown(text)))?;
    if !id.is_key() {
        return Err(format!("`{}` is not a valid public key", shown(text)));
    }
    Ok(id)
}

/// `text` as it may appear in a one-line error: control characters escaped, at most 80
/// characters.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Reads at most `max` bytes of `r` (a file, stdin); more is an error naming `what`.
pub fn read_bounded(mut r: impl std::io::Read, max: usize, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut buf = Vec::new();
    r.by_ref()
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if buf.len() > max {
        return Err(format!("{what} is larger than the limit of {max} bytes"));
    }
    Ok(buf)
}
