//! A blocking API client over a ZMQ DEALER socket: what `nodectl <node> <command>`, the tests and
//! the benchmarks use. It never waits without a deadline.

use super::endpoint::Endpoint;
use super::limits;
use super::socket::apply_limits;
use crate::wire::msg::{Envelope, Msg, ServiceId};
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
        code: u16,
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
        let sock = ctx.socket(zmq::DEALER).map_err(proto)?;
        apply_limits(&sock, limits::ESB_MAX_MSG).map_err(proto)?;
        sock.set_linger(0).map_err(proto)?;
        sock.set_identity(&id.to_bytes()).map_err(proto)?;
        sock.set_immediate(immediate).map_err(proto)?;
        sock.connect(&endpoint.zmq()).map_err(proto)?;
        Ok(Client {
            sock,
            id,
            next_request: 1,
        })
    }

    /// Whether a connection to the node is up (for a socket with `ZMQ_IMMEDIATE`, which
    /// queues messages only on completed connections), waiting at most `within`.
    fn connected(&self, within: Duration) -> bool {
        let ms = within.as_millis().min(i64::MAX as u128) as i64;
        self.sock.poll(zmq::POLLOUT, ms).is_ok_and(|n| n > 0)
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
        self.sock
            .send_multipart(frames, 0)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(request_id)
    }

    /// Receives the next message, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Envelope, ClientError> {
        let ready = self
            .sock
            .poll(
                zmq::POLLIN,
                timeout.as_millis().min(i64::MAX as u128) as i64,
            )
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if ready == 0 {
            return Err(ClientError::Timeout(timeout));
        }
        let frames = self
            .sock
            .recv_multipart(0)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
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
    endpoint: Endpoint,
    timeout: Duration,
    slot: std::sync::Mutex<Option<Client>>,
}

impl SharedClient {
    /// A client of `endpoint` whose requests wait at most `timeout`.
    pub fn new(zmq: zmq::Context, endpoint: Endpoint, timeout: Duration) -> SharedClient {
        SharedClient {
            zmq,
            endpoint,
            timeout,
            slot: std::sync::Mutex::new(None),
        }
    }

    /// The endpoint, as ZMQ writes it.
    pub fn endpoint(&self) -> String {
        self.endpoint.zmq()
    }

    /// Sends `msg` to `dst` and waits for its final reply (progress is skipped).
    pub fn request(&self, dst: &ServiceId, msg: Msg) -> Result<Msg, ClientError> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let client = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(Client::connect_with(&self.zmq, &self.endpoint, true)?),
        };
        if !client.connected(CONNECT_WAIT.min(self.timeout)) {
            *slot = None;
            return Err(ClientError::NotRunning(format!(
                "no connection to {}",
                self.endpoint.zmq()
            )));
        }
        match client.request(dst, msg, self.timeout, |_| ()) {
            Ok(reply) => Ok(reply),
            Err(e) => {
                if !matches!(e, ClientError::Failure { .. }) {
                    *slot = None;
                }
                Err(e)
            }
        }
    }
}
