//! The ZMQ side of a bus: a ROUTER socket bound on the bus endpoint and driven inside the actix
//! arbiter (docs/ARCHITECTURE.md, "Bus sockets"): the socket's `ZMQ_FD` is registered with tokio, inbound
//! frames are decoded and routed through the [`Bus`] on the arbiter thread, and the bus's outlet
//! sends outbound frames straight on the socket. No extra thread and no cross-thread wake-up
//! between a client and the services.
//!
//! `ZMQ_FD` is edge-triggered and only says "look at `ZMQ_EVENTS`": the pump drains until
//! `ZMQ_EVENTS` shows no input, is poked after every send (a send may consume the edge), and
//! re-checks on a 100 ms tick, so a missed edge costs latency, never a hang.
//!
//! Bad input is answered here: a 3-frame message that does not decode gets a failure reply with
//! the request id when it could be read; any other frame count is dropped with a log line.
//!
//! A TCP endpoint is always encrypted ([`super::secure`]): each peer sends one-frame messages,
//! the handshake and then one encrypted bus message each; the pump decrypts them into the same
//! three frames, and the outlet encrypts what goes back. There is no plaintext TCP.

use super::endpoint::Endpoint;
use super::limits;
use super::router::{Bus, OutletError};
use super::secure::{Inbound, SecureConfig, Sessions};
use crate::wire::api::{code, type_id, Envelope, FrameError, Msg};
use bitcoin::hex::DisplayHex;
use std::future::Future;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// Why a bus socket could not be bound.
#[derive(Debug)]
pub struct SocketError(pub String);

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SocketError {}

/// What the socket and its pump share.
struct Shared {
    /// The ROUTER socket; `None` once closed.
    sock: Mutex<Option<zmq::Socket>>,
    /// Poked after every send and on close: the pump looks at `ZMQ_EVENTS` again.
    poke: Notify,
    /// The encrypted sessions of a TCP endpoint.
    sessions: Option<Mutex<Sessions>>,
}

impl Shared {
    fn sock(&self) -> MutexGuard<'_, Option<zmq::Socket>> {
        crate::sync::lock(&self.sock)
    }

    fn sessions(&self) -> Option<MutexGuard<'_, Sessions>> {
        self.sessions.as_ref().map(|s| crate::sync::lock(s))
    }

    /// Sends `[routing id, src, dst, payload]`: as is, or encrypted into `[routing id,
    /// packet]` on an encrypted bus (`Unreachable` for a peer without an open session).
    fn send(&self, frames: Vec<Vec<u8>>) -> Result<(), OutletError> {
        let frames = match self.sessions() {
            None => frames,
            Some(mut sessions) => {
                let [rid, src, dst, payload] =
                    <[Vec<u8>; 4]>::try_from(frames).map_err(|_| OutletError::Unreachable)?;
                let packet = sessions
                    .seal(&rid, &src, &dst, &payload)
                    .ok_or(OutletError::Unreachable)?;
                vec![rid, packet]
            }
        };
        let sent = match self.sock().as_ref() {
            None => return Err(OutletError::Closed),
            Some(s) => s.send_multipart(frames, zmq::DONTWAIT),
        };
        self.poke.notify_one();
        sent.map_err(|e| match e {
            zmq::Error::EHOSTUNREACH => OutletError::Unreachable,
            zmq::Error::EAGAIN => OutletError::Full,
            _ => OutletError::Closed,
        })
    }
}

/// A bound bus socket. [`BusSocket::pump`] must run on the arbiter for it to receive;
/// [`BusSocket::close`] (or drop) closes it and removes an IPC socket file.
pub struct BusSocket {
    bus: Bus,
    endpoint: Endpoint,
    shared: Arc<Shared>,
}

/// Applies the explicit limits of `bus::limits` to a bus socket.
pub fn apply_limits(sock: &zmq::Socket, max_msg: i64) -> zmq::Result<()> {
    sock.set_linger(limits::LINGER_MS)?;
    sock.set_maxmsgsize(max_msg)?;
    sock.set_handshake_ivl(limits::HANDSHAKE_IVL_MS)?;
    sock.set_sndhwm(limits::SOCKET_HWM)?;
    sock.set_rcvhwm(limits::SOCKET_HWM)?;
    sock.set_heartbeat_ivl(limits::HEARTBEAT_IVL_MS)?;
    sock.set_heartbeat_timeout(limits::HEARTBEAT_TIMEOUT_MS)?;
    sock.set_heartbeat_ttl(limits::HEARTBEAT_TIMEOUT_MS)?;
    Ok(())
}

impl BusSocket {
    /// Binds `endpoint` for `bus` and installs the bus's outlet.
    pub fn bind(
        ctx: &zmq::Context,
        bus: Bus,
        endpoint: &Endpoint,
        max_msg: i64,
        secure: Option<SecureConfig>,
    ) -> Result<BusSocket, SocketError> {
        let fail = |what: &str, e: zmq::Error| {
            SocketError(format!("{} bus, {endpoint}: {what}: {e}", bus.name()))
        };
        let sessions = match (endpoint, secure) {
            (Endpoint::Tcp { .. }, Some(config)) => Some(Mutex::new(Sessions::new(
                bus.name(),
                config,
                max_msg as usize,
            ))),
            (Endpoint::Tcp { .. }, None) => {
                return Err(SocketError(format!(
                    "{} bus, {endpoint}: a TCP bus needs the node's key (it is always encrypted)",
                    bus.name()
                )))
            }
            _ => None,
        };
        let router = ctx.socket(zmq::ROUTER).map_err(|e| fail("socket", e))?;
        apply_limits(&router, max_msg).map_err(|e| fail("options", e))?;
        router
            .set_router_mandatory(true)
            .map_err(|e| fail("options", e))?;
        router
            .set_router_handover(true)
            .map_err(|e| fail("options", e))?;
        if let Some(path) = endpoint.ipc_path() {
            clear_stale_socket(path)
                .map_err(|e| SocketError(format!("{} bus: {e}", bus.name())))?;
        }
        router.bind(&endpoint.zmq()).map_err(|e| fail("bind", e))?;
        if let Some(path) = endpoint.ipc_path() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| {
                    SocketError(format!(
                        "{} bus: chmod 600 {}: {e}",
                        bus.name(),
                        path.display()
                    ))
                },
            )?;
        }
        let shared = Arc::new(Shared {
            sock: Mutex::new(Some(router)),
            poke: Notify::new(),
            sessions,
        });
        let out = shared.clone();
        bus.set_outlet(Some(Box::new(move |frames: Vec<Vec<u8>>| out.send(frames))));
        Ok(BusSocket {
            bus,
            endpoint: endpoint.clone(),
            shared,
        })
    }

    /// The receiving loop: run it on the arbiter (it must be polled inside a tokio runtime).
    /// Ends with `Ok` when the socket is closed, with `Err` if the socket fails.
    pub fn pump(&self) -> impl Future<Output = Result<(), String>> + 'static {
        let (shared, bus) = (self.shared.clone(), self.bus.clone());
        async move {
            // Register a duplicate of ZMQ_FD: the AsyncFd owns it, so it stays valid whatever
            // happens to the socket (no ordering between closing and deregistering).
            let fd: OwnedFd = {
                let guard = shared.sock();
                let Some(sock) = guard.as_ref() else {
                    return Ok(());
                };
                let raw = sock.get_fd().map_err(|e| format!("ZMQ_FD: {e}"))?;
                // SAFETY: `raw` is the socket's open signalling fd, borrowed only for the
                // duration of this call, which duplicates it.
                unsafe { BorrowedFd::borrow_raw(raw) }
                    .try_clone_to_owned()
                    .map_err(|e| format!("dup ZMQ_FD: {e}"))?
            };
            // SAFETY: the AsyncFd owns `fd` (an OwnedFd), which stays open for its lifetime.
            let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
                .map_err(|e| format!("register ZMQ_FD: {e}"))?;
            loop {
                let mut handled = 0;
                loop {
                    let next = {
                        let guard = shared.sock();
                        let Some(sock) = guard.as_ref() else {
                            return Ok(());
                        };
                        let events = sock.get_events().map_err(|e| e.to_string())?;
                        if !events.contains(zmq::POLLIN) {
                            break;
                        }
                        recv_bounded(sock, shared.sessions.is_some()).map_err(|e| e.to_string())?
                    };
                    let Some(msg) = next else { break };
                    match shared.sessions.is_some() {
                        true => secure_in(&shared, &bus, msg),
                        false => handle_in(&shared, &bus, msg),
                    }
                    handled += 1;
                    if handled % limits::READ_BURST == 0 {
                        // Let the services run between bursts of one busy socket.
                        actix_rt::task::yield_now().await;
                    }
                }
                if let Some(mut sessions) = shared.sessions() {
                    sessions.expire(std::time::Instant::now());
                }
                wait(&afd, &shared.poke).await;
            }
        }
    }

    /// Closes the socket and removes an IPC socket file.
    pub fn close(&mut self) {
        self.bus.set_outlet(None);
        let sock = self.shared.sock().take();
        if sock.is_none() {
            return;
        }
        drop(sock);
        self.shared.poke.notify_one();
        if let Some(path) = self.endpoint.ipc_path() {
            // libzmq closes the listener on its reaper thread, a moment after the socket is
            // dropped; wait (bounded) so that a restart binding the same path right away does
            // not find it still accepting.
            let deadline = std::time::Instant::now() + CLOSE_WAIT;
            while std::os::unix::net::UnixStream::connect(path).is_ok()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for BusSocket {
    fn drop(&mut self) {
        self.close();
    }
}

/// Longest wait for libzmq to close a listener when a bus socket closes.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Safety net against a missed `ZMQ_FD` edge: the pump re-checks at least this often.
const TICK: Duration = Duration::from_millis(100);

/// Waits until the socket may have input: its fd is readable, a send poked it, or the tick.
async fn wait(afd: &AsyncFd<OwnedFd>, poke: &Notify) {
    let mut readable = pin!(afd.readable());
    let mut poked = pin!(poke.notified());
    let mut tick = pin!(actix_rt::time::sleep(TICK));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = readable.as_mut().poll(cx) {
            if let Ok(mut guard) = r {
                guard.clear_ready();
            }
            return Poll::Ready(());
        }
        if poked.as_mut().poll(cx).is_ready() || tick.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await
}

/// Removes a socket file left by a node that died, but never one a live process listens on.
fn clear_stale_socket(path: &std::path::Path) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("{} is in use by another process", path.display())),
        Err(_) => std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display())),
    }
}

/// Most frames kept from one ZMQ message: routing id + 3; more are read and discarded.
const MAX_PARTS: usize = 4;

/// One message read from the socket: its frames (at most [`MAX_PARTS`]), how many it had, and
/// the peer's address (TCP).
type Received = (Vec<Vec<u8>>, usize, String);

/// Receives one multipart message, keeping at most [`MAX_PARTS`] frames, and the peer's
/// address if `want_addr` (an encrypted bus logs it); `None` if none waits.
fn recv_bounded(router: &zmq::Socket, want_addr: bool) -> zmq::Result<Option<Received>> {
    let first = match router.recv_bytes(zmq::DONTWAIT) {
        Ok(f) => f,
        Err(zmq::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut frames = vec![first];
    let mut count = 1;
    let mut addr = String::new();
    while router.get_rcvmore()? {
        let mut part = router.recv_msg(0)?;
        if count == 1 && want_addr {
            addr = part.gets("Peer-Address").unwrap_or("?").to_string();
        }
        count += 1;
        if frames.len() < MAX_PARTS {
            frames.push(part.to_vec());
        }
    }
    Ok(Some((frames, count, addr)))
}

/// A message on an encrypted bus: `[routing id, one frame]`, through the peer's session.
fn secure_in(shared: &Shared, bus: &Bus, (frames, count, addr): Received) {
    let mut frames = frames.into_iter();
    let rid = frames.next().unwrap_or_default();
    // Not one frame is not our protocol: the same as a message that does not decrypt.
    let msg = match count {
        2 => frames.next().unwrap_or_default(),
        _ => Vec::new(),
    };
    let step = match shared.sessions() {
        Some(mut sessions) => sessions.on_message(&rid, &addr, &msg, std::time::Instant::now()),
        None => return,
    };
    match step {
        Inbound::Reply(act2) => {
            if let Some(sock) = shared.sock().as_ref() {
                let _ = sock.send_multipart([rid.as_slice(), &act2], zmq::DONTWAIT);
            }
            shared.poke.notify_one();
        }
        Inbound::Frames([src, dst, payload]) => {
            // Changing the allow-list is for the local API only.
            let ty = payload.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            if matches!(ty, Some(type_id::RPC_ALLOW | type_id::RPC_REVOKE)) {
                let id = payload
                    .get(2..10)
                    .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
                let why = Msg::failure(
                    code::REFUSED,
                    "the allow-list changes over the local API only",
                );
                let reply = crate::wire::api::payload_of(id, &why);
                let _ = shared.send(vec![rid, dst, src, reply]);
                return;
            }
            handle_in(shared, bus, (vec![rid, src, dst, payload], 4, addr));
        }
        Inbound::Nothing => {}
    }
}

fn handle_in(shared: &Shared, bus: &Bus, (frames, count, _): Received) {
    let mut frames = frames.into_iter();
    let routing_id = frames.next().unwrap_or_default();
    let body: Vec<Vec<u8>> = frames.collect();
    let decoded = if count == 4 {
        Envelope::decode_frames(&body)
    } else {
        Err(FrameError::FrameCount(count - 1))
    };
    match decoded {
        Ok(env) => bus.inbound(routing_id, env),
        Err(FrameError::FrameCount(n)) => {
            bus.stats().dropped.fetch_add(1, Ordering::Relaxed);
            let peer = routing_id.to_lower_hex_string();
            if crate::lograte::BAD_FRAMES.allow(&format!("{}:{peer}", bus.name())) {
                tracing::warn!(bus = bus.name(), %peer,
                    "dropped a message of {n} frames (expected 3: src, dst, payload)");
            }
        }
        Err(FrameError::Payload {
            request_id,
            code,
            reason,
        }) => {
            let peer = routing_id.to_lower_hex_string();
            if crate::lograte::BAD_FRAMES.allow(&format!("{}:{peer}", bus.name())) {
                tracing::warn!(bus = bus.name(), %peer, request_id,
                    "bad message answered with failure {code:#06x}: {reason}");
            }
            let payload = crate::wire::api::payload_of(request_id, &Msg::failure(code, reason));
            // The reply swaps the frames as given, so even a bad id frame gets an answer.
            let reply = vec![routing_id, body[1].clone(), body[0].clone(), payload];
            if shared.send(reply).is_err() {
                bus.stats().dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Waits for the socket file of an IPC endpoint to accept connections (used by the tests and the benchmarks).
pub fn wait_for_ipc(path: &std::path::Path, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
