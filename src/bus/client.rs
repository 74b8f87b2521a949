//! A blocking API client over a ZMQ DEALER socket: what `nodectl <node> <command>`, the tests and
//! the benchmarks use. It never waits without a deadline.

use super::endpoint::Endpoint;
use super::limits;
use super::socket::apply_limits;
use crate::wire::api::session::{ClientHandshake, ClientSession};
use crate::wire::api::{Code, Envelope, Msg, ServiceId};
use crate::wire::node_id::NodeId;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use std::time::{Duration, Instant};

/// Why a request did not succeed.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the endpoint.
    NotRunning(String),
    /// No final reply within the deadline.
    Timeout(Duration),
    /// The node answered with a failure.
    Failure {
        /// Failure code.
        code: Code,
        /// Message.
        message: String,
    },
    /// The reply could not be understood, or the socket failed.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning(why) => write!(f, "node is not running: {why}"),
            ClientError::Timeout(t) => {
                write!(f, "node did not answer within {:.1} s", t.as_secs_f64())
            }
            ClientError::Failure { code, message } => write!(f, "failure {code:#06x}: {message}"),
            ClientError::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// An API client.
pub struct Client {
    sock: zmq::Socket,
    id: ServiceId,
    next_request: u64,
    /// The encrypted session of a remote client (a TCP bus).
    session: Option<ClientSession>,
}

/// Where a remote client connects: `[bronze://]<node id>@<host>:<port>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// The node's id (its static key).
    pub node_id: PublicKey,
    /// Host name or address (a name is resolved by ZMQ, or by the proxy when there is one).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Where a client (or a service of a node) connects: a local endpoint, or a node's encrypted
/// TCP bus with the key to authenticate with.
#[derive(Clone, Debug)]
pub enum Dial {
    /// IPC or inproc (plaintext, protected by file modes).
    Local(Endpoint),
    /// `<node id>@host:port`, and our static key.
    Remote(Remote, SecretKey),
}

impl Dial {
    /// `[bronze://]<node id>@host:port` is remote (authenticated with `key`); anything else an
    /// endpoint. A TCP endpoint without a node id is refused: TCP buses are encrypted.
    pub fn parse(text: &str, data_dir: &std::path::Path, key: SecretKey) -> Result<Dial, String> {
        if text.contains('@') {
            return Ok(Dial::Remote(Remote::parse(text)?, key));
        }
        let e = Endpoint::parse(text, data_dir).map_err(|e| e.to_string())?;
        if let Endpoint::Tcp { .. } = e {
            return Err(format!(
                "`{}` is a TCP bus, which is encrypted: give it as <node id>@host:port",
                text.escape_debug()
            ));
        }
        Ok(Dial::Local(e))
    }

    /// How it is shown (logs, `info`).
    pub fn shown(&self) -> String {
        match self {
            Dial::Local(e) => e.zmq(),
            Dial::Remote(r, _) => format!("{}@{}", r.node_id, r.zmq()),
        }
    }
}

impl Remote {
    /// Parses `[bronze://]<node id>@<host>:<port>` (an IPv6 host in brackets).
    pub fn parse(text: &str) -> Result<Remote, String> {
        let bad = |why: &str| format!("`{}` is not NODE_ID@HOST:PORT: {why}", text.escape_debug());
        let rest = text.trim().strip_prefix("bronze://").unwrap_or(text.trim());
        let (id, addr) = rest.split_once('@').ok_or_else(|| bad("no @"))?;
        let node_id = NodeId::parse_key(id)
            .ok()
            .and_then(|k| k.public_key())
            .ok_or_else(|| bad("a bad node id"))?;
        let (host, port) = super::endpoint::host_port(addr).ok_or_else(|| bad("no HOST:PORT"))?;
        if host.len() > 255 || !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("a bad host"));
        }
        Ok(Remote {
            node_id,
            host: host.to_string(),
            port,
        })
    }

    /// The ZMQ endpoint.
    pub fn zmq(&self) -> String {
        if self.host.contains(':') {
            format!("tcp://[{}]:{}", self.host, self.port)
        } else {
            format!("tcp://{}:{}", self.host, self.port)
        }
    }
}

/// A DEALER with the limits of `bus::limits` that never lingers on close.
fn dealer(ctx: &zmq::Context) -> zmq::Result<zmq::Socket> {
    let sock = ctx.socket(zmq::DEALER)?;
    apply_limits(&sock, limits::ESB_MAX_MSG)?;
    sock.set_linger(0)?;
    Ok(sock)
}

/// A wait as ZMQ's poll takes it.
fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Client {
    /// Connects to a node's API endpoint as a fresh random client id.
    pub fn connect(ctx: &zmq::Context, endpoint: &Endpoint) -> Result<Client, ClientError> {
        Client::connect_with(ctx, endpoint, false)
    }

    /// Like [`Client::connect`]; with `immediate`, the socket queues messages only on a
    /// completed connection (`ZMQ_IMMEDIATE`, set before connecting).
    fn connect_with(
        ctx: &zmq::Context,
        endpoint: &Endpoint,
        immediate: bool,
    ) -> Result<Client, ClientError> {
        if let Some(path) = endpoint.ipc_path() {
            if !path.exists() {
                return Err(ClientError::NotRunning(format!(
                    "no API socket at {}",
                    path.display()
                )));
            }
            if std::os::unix::net::UnixStream::connect(path).is_err() {
                return Err(ClientError::NotRunning(format!(
                    "nothing listens on {} (stale socket)",
                    path.display()
                )));
            }
        }
        let proto = |e: zmq::Error| ClientError::Protocol(e.to_string());
        let id = ServiceId::Client(bitcoin::secp256k1::rand::random());
        let sock = dealer(ctx).map_err(proto)?;
        sock.set_identity(&id.to_bytes()).map_err(proto)?;
        sock.set_immediate(immediate).map_err(proto)?;
        sock.connect(&endpoint.zmq()).map_err(proto)?;
        Ok(Client {
            sock,
            id,
            next_request: 1,
            session: None,
        })
    }

    /// Connects to `dial`: locally, or to a node's TCP bus with the handshake (within
    /// `timeout`).
    pub fn dial(ctx: &zmq::Context, dial: &Dial, timeout: Duration) -> Result<Client, ClientError> {
        match dial {
            Dial::Local(e) => Client::connect(ctx, e),
            Dial::Remote(r, key) => Client::connect_remote(ctx, r, key, None, timeout),
        }
    }

    /// Connects to a node's TCP bus at `remote` and runs the handshake as `key` (docs/API.md,
    /// "Remote API"), through a SOCKS5 `proxy` (`host:port`) if given. The handshake must
    /// complete within `timeout`. A key the node does not allow gets no error here: the node
    /// answers nothing after the handshake.
    pub fn connect_remote(
        ctx: &zmq::Context,
        remote: &Remote,
        key: &SecretKey,
        proxy: Option<&str>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let proto = |e: zmq::Error| ClientError::Protocol(e.to_string());
        let id = ServiceId::Client(bitcoin::secp256k1::rand::random());
        let sock = dealer(ctx).map_err(proto)?;
        if let Some(p) = proxy {
            sock.set_socks_proxy(Some(p)).map_err(proto)?;
        }
        sock.connect(&remote.zmq()).map_err(proto)?;
        let session = handshake(&sock, remote, key, timeout, proxy)?;
        Ok(Client {
            sock,
            id,
            next_request: 1,
            session: Some(session),
        })
    }

    /// Whether a connection to the node is up (for a socket with `ZMQ_IMMEDIATE`, which
    /// queues messages only on completed connections), waiting at most `within`.
    fn connected(&self, within: Duration) -> bool {
        self.sock
            .poll(zmq::POLLOUT, millis(within))
            .is_ok_and(|n| n > 0)
    }

    /// This client's service id.
    pub fn id(&self) -> &ServiceId {
        &self.id
    }

    /// Sends a message to `dst`; returns the request id used.
    pub fn send(&mut self, dst: &ServiceId, msg: Msg) -> Result<u64, ClientError> {
        let request_id = self.next_request;
        self.next_request += 1;
        let env = Envelope {
            src: self.id.clone(),
            dst: dst.clone(),
            request_id,
            msg,
        };
        let frames = env
            .encode_frames()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let message = seal_message(self.session.as_mut(), frames)?;
        self.sock
            .send_multipart(message, 0)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(request_id)
    }

    /// Receives the next message, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Envelope, ClientError> {
        let ready = self
            .sock
            .poll(zmq::POLLIN, millis(timeout))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if ready == 0 {
            return Err(ClientError::Timeout(timeout));
        }
        let frames = self
            .sock
            .recv_multipart(0)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let frames = open_message(self.session.as_mut(), frames)?;
        Envelope::decode_frames(&frames).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends a request and waits for its final reply, passing progress messages to `progress`.
    /// A failure reply becomes [`ClientError::Failure`].
    pub fn request(
        &mut self,
        dst: &ServiceId,
        msg: Msg,
        timeout: Duration,
        mut progress: impl FnMut(&str),
    ) -> Result<Msg, ClientError> {
        let deadline = Instant::now() + timeout;
        let id = self.send(dst, msg)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(timeout));
            }
            let env = self.recv(left).map_err(|e| match e {
                ClientError::Timeout(_) => ClientError::Timeout(timeout),
                e => e,
            })?;
            if env.request_id != id {
                continue;
            }
            match env.msg {
                Msg::Progress(text) => progress(&text),
                Msg::Failure { code, message } => {
                    return Err(ClientError::Failure { code, message })
                }
                other => return Ok(other),
            }
        }
    }

    /// Sends `msgs` to `dst` with at most `window` in flight, and hands each final reply to
    /// `on_reply` in the order of `msgs`; how many were answered. A failure reply ends it
    /// ([`PipelineError::Failed`], naming the item's index), and so does an error of
    /// `on_reply` ([`PipelineError::Reply`]). `timeout` applies to each wait for a reply.
    pub fn pipeline(
        &mut self,
        dst: &ServiceId,
        msgs: impl IntoIterator<Item = Msg>,
        window: usize,
        timeout: Duration,
        mut on_reply: impl FnMut(usize, Msg) -> Result<(), String>,
    ) -> Result<usize, PipelineError> {
        use std::collections::{BTreeMap, HashMap};
        let mut msgs = msgs.into_iter().enumerate().peekable();
        let mut in_flight: HashMap<u64, usize> = HashMap::new();
        let mut done: BTreeMap<usize, Msg> = BTreeMap::new();
        let mut next = 0;
        loop {
            while in_flight.len() < window.max(1) {
                let Some((i, msg)) = msgs.next() else { break };
                let id = self.send(dst, msg)?;
                in_flight.insert(id, i);
            }
            if in_flight.is_empty() {
                return Ok(next);
            }
            let env = self.recv(timeout)?;
            let Some(&i) = in_flight.get(&env.request_id) else {
                continue;
            };
            match env.msg {
                Msg::Progress(_) => continue,
                Msg::Failure { code, message } => {
                    return Err(PipelineError::Failed {
                        item: i,
                        code,
                        message,
                    })
                }
                reply => {
                    in_flight.remove(&env.request_id);
                    done.insert(i, reply);
                }
            }
            while let Some(reply) = done.remove(&next) {
                on_reply(next, reply).map_err(PipelineError::Reply)?;
                next += 1;
            }
        }
    }

    /// Follows the notifications of a subscription made with `subscribe` (sent to `dst`):
    /// every message goes to `on_event` until it says [`Step::Done`]. After `quiet` without a
    /// message it subscribes again: that proves the node is alive (no one waits on a dead
    /// node: no answer within `timeout` is an error) and renews a subscription a reconnect
    /// lost.
    pub fn follow(
        &mut self,
        dst: &ServiceId,
        subscribe: Msg,
        quiet: Duration,
        timeout: Duration,
        on_event: impl FnMut(&Envelope) -> Step,
    ) -> Result<(), ClientError> {
        self.follow_with(dst, || subscribe.clone(), quiet, timeout, on_event)
    }

    /// [`Client::follow`] whose renewed subscription is made by `subscribe` each time (a
    /// subscription that names the last event seen, as `subscribe_watches` does).
    pub fn follow_with(
        &mut self,
        dst: &ServiceId,
        mut subscribe: impl FnMut() -> Msg,
        quiet: Duration,
        timeout: Duration,
        mut on_event: impl FnMut(&Envelope) -> Step,
    ) -> Result<(), ClientError> {
        let mut probe: Option<(u64, Instant)> = None;
        loop {
            let wait = match probe {
                Some((_, deadline)) => deadline.saturating_duration_since(Instant::now()),
                None => quiet,
            };
            match self.recv(wait) {
                Ok(env) => match on_event(&env) {
                    Step::Done => return Ok(()),
                    Step::Event => {}
                    Step::Other => {
                        if probe.is_some_and(|(id, _)| id == env.request_id) {
                            probe = None;
                        }
                    }
                },
                Err(ClientError::Timeout(_)) if probe.is_some() => {
                    return Err(ClientError::Timeout(timeout));
                }
                Err(ClientError::Timeout(_)) => {
                    let id = self.send(dst, subscribe())?;
                    probe = Some((id, Instant::now() + timeout));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a notification meant to [`Client::follow`]'s caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One of the events followed.
    Event,
    /// Something else (e.g. the reply to a renewed subscription).
    Other,
    /// The end: stop following.
    Done,
}

/// Why [`Client::pipeline`] stopped.
#[derive(Debug)]
pub enum PipelineError {
    /// The node answered item `item` with a failure.
    Failed {
        /// The index of the message.
        item: usize,
        /// Failure code.
        code: Code,
        /// Message.
        message: String,
    },
    /// The client could not send or receive.
    Client(ClientError),
    /// The caller refused a reply.
    Reply(String),
}

impl From<ClientError> for PipelineError {
    fn from(e: ClientError) -> PipelineError {
        PipelineError::Client(e)
    }
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Failed {
                item,
                code,
                message,
            } => write!(f, "item {item}: failure {code:#06x}: {message}"),
            PipelineError::Client(e) => e.fmt(f),
            PipelineError::Reply(why) => f.write_str(why),
        }
    }
}

/// The ZMQ message that carries the bus frames `[src, dst, payload]`: the frames as they are
/// on a local bus, or one encrypted packet in a remote `session`.
pub fn seal_message(
    session: Option<&mut ClientSession>,
    frames: [Vec<u8>; 3],
) -> Result<Vec<Vec<u8>>, ClientError> {
    match session {
        None => Ok(frames.to_vec()),
        Some(s) => {
            let [src, dst, payload] = &frames;
            s.seal(src, dst, payload)
                .map(|packet| vec![packet])
                .map_err(|e| ClientError::Protocol(e.to_string()))
        }
    }
}

/// The bus frames a ZMQ message from the node carries ([`seal_message`] backwards).
pub fn open_message(
    session: Option<&mut ClientSession>,
    message: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ClientError> {
    match session {
        None => Ok(message),
        Some(s) => {
            let [packet] = <[Vec<u8>; 1]>::try_from(message).map_err(|f| {
                ClientError::Protocol(format!("{} frames from the node, not one", f.len()))
            })?;
            s.open(&packet)
                .map(|f| f.to_vec())
                .map_err(|e| ClientError::Protocol(format!("the node's message: {e}")))
        }
    }
}

/// Runs the client side of the handshake (docs/API.md, "Remote API") on a connected DEALER:
/// act one, act two within `timeout`, act three; the open session. (`proxy` only names the
/// proxy in the error.)
pub fn handshake(
    sock: &zmq::Socket,
    remote: &Remote,
    key: &SecretKey,
    timeout: Duration,
    proxy: Option<&str>,
) -> Result<ClientSession, ClientError> {
    let proto = |e: zmq::Error| ClientError::Protocol(e.to_string());
    let ephemeral = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let max = limits::ESB_MAX_MSG as usize;
    let (act1, hs) = ClientHandshake::start(*key, remote.node_id, ephemeral, max);
    sock.send(act1, 0).map_err(proto)?;
    let ready = sock.poll(zmq::POLLIN, millis(timeout)).map_err(proto)?;
    if ready == 0 {
        return Err(ClientError::NotRunning(format!(
            "no handshake answer from {} within {:.1} s{}",
            remote.zmq(),
            timeout.as_secs_f64(),
            proxy.map_or(String::new(), |p| format!(" (through the proxy {p})"))
        )));
    }
    let act2 = sock.recv_bytes(0).map_err(proto)?;
    let (act3, session) = hs
        .on_act_two(&act2)
        .map_err(|e| ClientError::Protocol(format!("the node's handshake: {e}")))?;
    sock.send(act3, 0).map_err(proto)?;
    Ok(session)
}

/// How often a link to another node (the Storm node's to its LNP node, the RGB node's to its
/// Storm node) asks whether it is there.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which a link counts the other node as unreachable.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// When a link last heard the other node, and when it opened its session.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    opened: Instant,
    heard: Option<Instant>,
}

impl Liveness {
    /// A session opened at `now`, nothing heard yet.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            opened: now,
            heard: None,
        }
    }

    /// A new session (connection) opened at `now`.
    pub fn opened(&mut self, now: Instant) {
        self.opened = now;
    }

    /// The other node answered at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.heard = Some(now);
    }

    /// Whether the other node answered within [`DEAD_AFTER`].
    pub fn alive(&self, now: Instant) -> bool {
        self.heard
            .is_some_and(|t| now.saturating_duration_since(t) < DEAD_AFTER)
    }

    /// Whether a remote session is silent for twice [`DEAD_AFTER`] since it was opened or last
    /// heard: over TCP it is started afresh (the node restarted, the connection broke, or our
    /// key was allowed since; ZMQ reconnects TCP by itself, but a new connection needs a new
    /// session).
    pub fn stale(&self, now: Instant) -> bool {
        let since = self.heard.map_or(self.opened, |t| t.max(self.opened));
        !self.alive(now) && now.saturating_duration_since(since) >= DEAD_AFTER * 2
    }
}

/// Longest wait of a [`SharedClient`] for a connection to the other node.
pub const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// A client shared by threads, for services that call another node (a STORE, a Storm node):
/// it connects on first use, and afresh after an error that may leave a late reply on its
/// socket. Each call is one request with a deadline. Its socket queues a request only on a
/// live connection (`ZMQ_IMMEDIATE`): a node that is down or went away fails the call within
/// [`CONNECT_WAIT`], not at the deadline.
pub struct SharedClient {
    zmq: zmq::Context,
    dial: Dial,
    timeout: Duration,
    slot: std::sync::Mutex<Option<Client>>,
}

impl SharedClient {
    /// A client of `dial` whose requests wait at most `timeout`.
    pub fn new(zmq: zmq::Context, dial: Dial, timeout: Duration) -> SharedClient {
        SharedClient {
            zmq,
            dial,
            timeout,
            slot: std::sync::Mutex::new(None),
        }
    }

    /// Where it connects, as shown.
    pub fn endpoint(&self) -> String {
        self.dial.shown()
    }

    /// Runs `f` on the client (connected first, within [`CONNECT_WAIT`]) with the timeout of
    /// each reply; an error that may leave a late reply on the socket (any but a failure the
    /// node answered) drops the connection, so the next call starts afresh. Calls from other
    /// threads wait meanwhile.
    pub fn with<T, E: From<ClientError>>(
        &self,
        f: impl FnOnce(&mut Client, Duration) -> Result<T, E>,
        keeps: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        let mut slot = crate::sync::lock(&self.slot);
        let wait = CONNECT_WAIT.min(self.timeout);
        let client = match (slot.as_mut(), &self.dial) {
            (Some(c), _) => c,
            (None, Dial::Local(e)) => slot.insert(Client::connect_with(&self.zmq, e, true)?),
            // The handshake proves the connection (within the same wait).
            (None, Dial::Remote(r, key)) => {
                slot.insert(Client::connect_remote(&self.zmq, r, key, None, wait)?)
            }
        };
        if client.session.is_none() && !client.connected(wait) {
            *slot = None;
            return Err(
                ClientError::NotRunning(format!("no connection to {}", self.dial.shown())).into(),
            );
        }
        let result = f(client, self.timeout);
        if result.as_ref().is_err_and(|e| !keeps(e)) {
            *slot = None;
        }
        result
    }

    /// Sends `msg` to `dst` and waits for its final reply (progress is skipped).
    pub fn request(&self, dst: &ServiceId, msg: Msg) -> Result<Msg, ClientError> {
        self.with(
            |c, timeout| c.request(dst, msg, timeout, |_| ()),
            |e| matches!(e, ClientError::Failure { .. }),
        )
    }
}
