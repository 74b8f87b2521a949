//! The thin bridge between one TCP socket and the actor that owns the connection (LNP `peerd`,
//! BP `wired`): two tasks on the actor's arbiter and the back-pressure between them.
//!
//! - The reader hands each chunk read to the actor as [`Inbound`] (awaiting its bounded
//!   mailbox) and reports the end as [`SocketEnded`].
//! - The writer writes each batch in one call and counts the bytes.
//! - Back-pressure: the actor calls [`TcpBridge::stall`] once [`MAX_QUEUED_OUT`] bytes wait to be
//!   written; then it stops feeding its protocol session and the reader stops reading, until
//!   the writer has drained half and sends [`Resume`]. A peer that does not read ours is not
//!   read either; what it sent meanwhile stays in its socket.

use actix::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

pub use super::limits::MAX_QUEUED_OUT;
use super::limits::{FLUSH_GRACE, READ_CHUNK};

thread_local! {
    /// The read buffer of every connection on this thread: one [`READ_CHUNK`] per arbiter
    /// instead of one per peer (a peer's read is copied out at its exact size).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_CHUNK]);
}

/// Byte counters of one connection.
#[derive(Default, Debug)]
pub struct Counters {
    /// Bytes read from the socket.
    pub bytes_in: AtomicU64,
    /// Bytes written to the socket.
    pub bytes_out: AtomicU64,
}

/// Bytes read from the socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub Vec<u8>);

/// The socket ended (the peer closed it, or a read or write failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketEnded(pub String);

/// The writer drained below half of [`MAX_QUEUED_OUT`] after a stall.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resume;

/// The bridge of one connection.
pub struct TcpBridge {
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Bytes handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    /// Wakes the paused reader.
    drained: Arc<Notify>,
    /// Set while the output is over [`MAX_QUEUED_OUT`]: input is neither read nor processed.
    stalled: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// Writer, then reader.
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
}

impl Default for TcpBridge {
    fn default() -> Self {
        TcpBridge::new()
    }
}

impl TcpBridge {
    /// A bridge with no socket yet (its counters exist already).
    pub fn new() -> TcpBridge {
        TcpBridge {
            writer: None,
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            stalled: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Counters::default()),
            tasks: Vec::new(),
        }
    }

    /// The connection's byte counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Starts the reader and writer on `stream` for the actor `me`.
    pub fn attach<A>(&mut self, stream: TcpStream, me: Addr<A>)
    where
        A: Actor<Context = Context<A>> + Handler<Inbound> + Handler<SocketEnded> + Handler<Resume>,
    {
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (queued, drained, stalled, counters) = (
            self.queued.clone(),
            self.drained.clone(),
            self.stalled.clone(),
            self.counters.clone(),
        );
        let writer_me = me.clone();
        self.tasks.push(actix_rt::spawn(async move {
            while let Some(batch) = rx.recv().await {
                if let Err(e) = write.write_all(&batch).await {
                    writer_me.do_send(SocketEnded(format!("write failed: {e}")));
                    return;
                }
                counters
                    .bytes_out
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let left = queued.fetch_sub(batch.len(), Ordering::AcqRel) - batch.len();
                if left < MAX_QUEUED_OUT / 2 && stalled.swap(false, Ordering::AcqRel) {
                    drained.notify_one();
                    writer_me.do_send(Resume);
                }
            }
            let _ = write.shutdown().await;
        }));
        let (drained, stalled, counters) = (
            self.drained.clone(),
            self.stalled.clone(),
            self.counters.clone(),
        );
        self.tasks.push(actix_rt::spawn(async move {
            loop {
                while stalled.load(Ordering::Acquire) {
                    drained.notified().await;
                }
                // No buffer is held while the peer is idle: wait for readability, then read
                // into the arbiter thread's scratch buffer and hand over an exact copy.
                if let Err(e) = read.readable().await {
                    me.do_send(SocketEnded(format!("read failed: {e}")));
                    return;
                }
                let got = SCRATCH.with(|b| {
                    let mut b = b.borrow_mut();
                    read.try_read(&mut b).map(|n| b[..n].to_vec())
                });
                let bytes = match got {
                    Ok(b) if b.is_empty() => {
                        me.do_send(SocketEnded("the peer closed the connection".into()));
                        return;
                    }
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        me.do_send(SocketEnded(format!("read failed: {e}")));
                        return;
                    }
                };
                counters
                    .bytes_in
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if me.send(Inbound(bytes)).await.is_err() {
                    return;
                }
            }
        }));
        self.writer = Some(tx);
    }

    /// Hands bytes to the writer.
    pub fn write(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(w) = &self.writer {
            self.queued.fetch_add(bytes.len(), Ordering::AcqRel);
            let _ = w.send(bytes);
        }
    }

    /// Bytes not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether input is paused.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    /// Room left in the output before the bound (for a session's bounded receive).
    pub fn room(&self) -> usize {
        MAX_QUEUED_OUT.saturating_sub(self.queued())
    }

    /// Called when input is left unprocessed because `queued + pending` reached the bound:
    /// pauses input until [`Resume`]. Returns `true` if the writer drained everything before
    /// the pause took hold and nothing more is coming (then nobody would send `Resume`, so the
    /// caller goes on at once).
    pub fn stall(&self, queued_before: usize, pending: usize) -> bool {
        if queued_before + pending < MAX_QUEUED_OUT {
            return false;
        }
        self.stalled.store(true, Ordering::Release);
        pending == 0
            && self.queued() < MAX_QUEUED_OUT / 2
            && self.stalled.swap(false, Ordering::AcqRel)
    }

    /// Closes: the reader stops now, the writer gets [`FLUSH_GRACE`] to send what is queued.
    pub fn close(&mut self) {
        self.writer = None;
        let mut tasks = std::mem::take(&mut self.tasks);
        if tasks.len() == 2 {
            tasks.pop().expect("reader").abort();
        }
        if let Some(writer) = tasks.pop() {
            actix_rt::spawn(async move {
                actix_rt::time::sleep(FLUSH_GRACE).await;
                writer.abort();
            });
        }
    }

    /// Stops both tasks at once (the system is stopping).
    pub fn abort(&mut self) {
        self.writer = None;
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// How outbound P2P connections are made (`--proxy`, `--always-use-proxy`, as Core Lightning
/// names them): set once at node start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// A SOCKS5 proxy, `host:port` (Tor: 127.0.0.1:9050).
    pub proxy: Option<String>,
    /// Every dial goes through the proxy; none is ever made directly.
    pub always: bool,
}

static PROXY: std::sync::OnceLock<ProxyConfig> = std::sync::OnceLock::new();

/// Sets how this process dials peers (once, at node start; a second call is ignored).
pub fn set_proxy(p: ProxyConfig) {
    let _ = PROXY.set(p);
}

/// How a dial to `host` (without brackets) goes: through the proxy (`Some`) or directly (`None`); an error for a
/// `.onion` host without a proxy.
fn route(host: &str) -> Result<Option<&'static str>, String> {
    let p = PROXY.get();
    let proxy = p.and_then(|p| p.proxy.as_deref());
    let always = p.is_some_and(|p| p.always);
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    match proxy {
        // Names (.onion or not) go to the proxy as names; addresses too with --always-use-proxy.
        Some(p) if always || !is_ip => Ok(Some(p)),
        Some(_) => Ok(None),
        None if host.ends_with(".onion") => Err(format!(
            "{host} is a Tor address: start the node with --proxy (Tor's SOCKS port)"
        )),
        None => Ok(None),
    }
}

/// Dials `addr` (`host:port`) within `timeout`, directly or through the SOCKS5 proxy (see
/// [`ProxyConfig`]); the error names the address and the cause.
pub async fn dial(addr: String, timeout: Duration) -> Result<TcpStream, String> {
    let (host, port) = crate::bus::endpoint::host_port(&addr)
        .ok_or_else(|| format!("cannot connect to {addr}: not HOST:PORT"))?;
    let via = route(host).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let connect = async {
        match via {
            None => TcpStream::connect(addr.clone())
                .await
                .map_err(|e| e.to_string()),
            Some(proxy) => tokio_socks::tcp::Socks5Stream::connect(proxy, (host, port))
                .await
                .map(|s| s.into_inner())
                .map_err(|e| format!("through the proxy {proxy}: {e}")),
        }
    };
    match actix_rt::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {addr}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Binds `addr` and accepts connections on the current arbiter, handing each to `on_accept`
/// (which applies the caps). Returns the bound address and the accept task.
pub fn listen(
    addr: &str,
    what: &'static str,
    on_accept: impl Fn(TcpStream, SocketAddr) + 'static,
) -> Result<(SocketAddr, actix_rt::task::JoinHandle<()>), String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let task = actix_rt::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, from)) => on_accept(stream, from),
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(listen = %local, "accept failed: {e}");
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tracing::info!(listen = %local, "listening for {what}");
    Ok((local, task))
}
