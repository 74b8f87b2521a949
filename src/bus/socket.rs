//! The ZMQ side of a bus: a ROUTER socket bound on the bus endpoint, owned by one OS thread
//! (ECOSYSTEM.md pattern A). Inbound frames are decoded on that thread and routed through the
//! [`Bus`]; outbound frames come from the bus through an inproc PAIR queue (the bus's outlet).
//!
//! Bad input is answered on the socket thread itself: a 3-frame message that does not decode gets
//! a failure reply with the request id when it could be read; any other frame count is dropped
//! with a log line. Nothing a client sends can panic or stall the node.

use super::endpoint::Endpoint;
use super::limits;
use super::router::{Bus, OutletError};
use crate::wire::msg::{Envelope, FrameError, Msg};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Why a bus socket could not be bound.
#[derive(Debug)]
pub struct SocketError(pub String);

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SocketError {}

/// Called once if the socket thread ends on its own (a failure), with the cause.
pub type OnFailure = Box<dyn FnOnce(String) + Send>;

/// A bound bus socket and its thread. Dropping it (or [`BusSocket::close`]) stops the thread,
/// closes the socket and removes an IPC socket file.
pub struct BusSocket {
    bus: Bus,
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

static NEXT_QUEUE: AtomicU64 = AtomicU64::new(1);

/// Applies the explicit limits of QUALITY.md row 13 to a bus socket.
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
    /// Binds `endpoint` for `bus` and starts the socket thread. `on_failure` is called if the
    /// thread dies on its own.
    pub fn bind(
        ctx: &zmq::Context,
        bus: Bus,
        endpoint: &Endpoint,
        max_msg: i64,
        on_failure: OnFailure,
    ) -> Result<BusSocket, SocketError> {
        let fail = |what: &str, e: zmq::Error| {
            SocketError(format!("{} bus, {endpoint}: {what}: {e}", bus.name()))
        };
        if !endpoint.is_local() {
            return Err(SocketError(format!(
                "{} bus, {endpoint}: TCP buses are not encrypted yet; bind a loopback address",
                bus.name()
            )));
        }
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

        // The queue from the node's services to this thread.
        let queue = format!(
            "inproc://bus-queue-{}-{}",
            bus.name(),
            NEXT_QUEUE.fetch_add(1, Ordering::Relaxed)
        );
        let pull = ctx.socket(zmq::PAIR).map_err(|e| fail("queue", e))?;
        let push = ctx.socket(zmq::PAIR).map_err(|e| fail("queue", e))?;
        for s in [&pull, &push] {
            s.set_linger(0).map_err(|e| fail("queue", e))?;
            s.set_sndhwm(limits::OUTLET_HWM)
                .map_err(|e| fail("queue", e))?;
            s.set_rcvhwm(limits::OUTLET_HWM)
                .map_err(|e| fail("queue", e))?;
        }
        pull.bind(&queue).map_err(|e| fail("queue bind", e))?;
        push.connect(&queue).map_err(|e| fail("queue connect", e))?;
        bus.set_outlet(Some(Box::new(move |frames: Vec<Vec<u8>>| {
            push.send_multipart(frames, zmq::DONTWAIT)
                .map_err(|e| match e {
                    zmq::Error::EAGAIN => OutletError::Full,
                    _ => OutletError::Closed,
                })
        })));

        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_bus = bus.clone();
        let name = format!("{}-socket", bus.name());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let bus = thread_bus.clone();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&router, &pull, &thread_bus, &thread_stop)
                }));
                let cause = match result {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => format!("socket error: {e}"),
                    Err(panic) => format!("panic: {}", crate::panic_message(&*panic)),
                };
                bus.set_outlet(None);
                tracing::error!(bus = bus.name(), "bus socket thread failed: {cause}");
                on_failure(cause);
            })
            .map_err(|e| SocketError(format!("{} bus: thread: {e}", bus.name())))?;
        Ok(BusSocket {
            bus,
            endpoint: endpoint.clone(),
            stop,
            thread: Some(thread),
        })
    }

    /// The bound endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops the thread, closes the socket and removes an IPC socket file.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.bus.set_outlet(None);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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

/// Longest wait for libzmq to close a listener when a bus socket closes.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// How long the thread waits in `poll` before it checks the stop flag again.
const POLL_MS: i64 = 50;

fn run(router: &zmq::Socket, pull: &zmq::Socket, bus: &Bus, stop: &AtomicBool) -> zmq::Result<()> {
    while !stop.load(Ordering::Acquire) {
        {
            let mut items = [
                router.as_poll_item(zmq::POLLIN),
                pull.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, POLL_MS)?;
        }
        for _ in 0..limits::READ_BURST {
            match pull.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => send_out(router, bus, frames)?,
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => return Err(e),
            }
        }
        for _ in 0..limits::READ_BURST {
            match recv_bounded(router)? {
                Some(frames) => handle_in(router, bus, frames)?,
                None => break,
            }
        }
    }
    Ok(())
}

fn send_out(router: &zmq::Socket, bus: &Bus, frames: Vec<Vec<u8>>) -> zmq::Result<()> {
    match router.send_multipart(frames.iter().map(|f| f.as_slice()), zmq::DONTWAIT) {
        Ok(()) => Ok(()),
        Err(zmq::Error::EHOSTUNREACH) => {
            bus.unreachable(frames);
            Ok(())
        }
        Err(zmq::Error::EAGAIN) => {
            // The peer does not read: its queue is full. Drop and count, never block.
            bus.stats().dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(bus = bus.name(), "peer queue full, message dropped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Most frames kept from one ZMQ message: routing id + 3; more are read and discarded.
const MAX_PARTS: usize = 4;

/// Receives one multipart message, keeping at most [`MAX_PARTS`] frames; `None` if none waits.
fn recv_bounded(router: &zmq::Socket) -> zmq::Result<Option<(Vec<Vec<u8>>, usize)>> {
    let first = match router.recv_bytes(zmq::DONTWAIT) {
        Ok(f) => f,
        Err(zmq::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut frames = vec![first];
    let mut count = 1;
    while router.get_rcvmore()? {
        let part = router.recv_bytes(0)?;
        count += 1;
        if frames.len() < MAX_PARTS {
            frames.push(part);
        }
    }
    Ok(Some((frames, count)))
}

fn handle_in(
    router: &zmq::Socket,
    bus: &Bus,
    (frames, count): (Vec<Vec<u8>>, usize),
) -> zmq::Result<()> {
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
            tracing::warn!(bus = bus.name(), peer = %hex(&routing_id),
                "dropped a message of {n} frames (expected 3: src, dst, payload)");
        }
        Err(FrameError::Payload {
            request_id,
            code,
            reason,
        }) => {
            tracing::warn!(bus = bus.name(), peer = %hex(&routing_id), request_id,
                "bad message answered with failure {code:#06x}: {reason}");
            let payload = crate::wire::msg::payload_of(request_id, &Msg::failure(code, reason));
            // The reply swaps the frames as given, so even a bad id frame gets an answer.
            let reply = [routing_id.as_slice(), &body[1], &body[0], &payload];
            match router.send_multipart(reply, zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::EHOSTUNREACH) | Err(zmq::Error::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits for the socket file of an IPC endpoint to accept connections (used by tests/benches).
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
