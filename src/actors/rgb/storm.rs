//! The RGB node's link to a Storm node (`--storm <STORM bus endpoint>`, `[rgb] storm`): RGB
//! contracts travel between nodes as Storm containers of the extension app RgbContracts
//! (0x0010, [`RGB_STORM_APP`]).
//!
//! - Sending ([`StormLink::send`], from a worker): the binary consignment is made a container
//!   by the Storm client of `nodectl storm containerize` ([`StormClient::containerize`]: the
//!   chunks uploaded pipelined, then `containerize`, MIME [`MIME`], the contract id as its
//!   info) and offered to the peer (`send_container`, app 0x0010). One call at a time over one
//!   shared client.
//! - Receiving (a thread with its own DEALER): registered as app 0x0010 and subscribed to
//!   transfers, it accepts every offer for the app that is at most [`MAX_CONSIGNMENT`] bytes
//!   (the RGB node validates what it gets; Storm bounds offers per peer); on
//!   `container_received` it assembles the container ([`StormClient::assemble`]: every chunk
//!   fetched pipelined and checked) and hands the
//!   consignment to [`Dispatch::received`]: a worker validates it, imports it only if valid,
//!   and the API's `contract_received` subscribers hear the outcome.
//! - Liveness: `info` to `stormd` every [`HEARTBEAT`]; no answer for [`DEAD_AFTER`] marks the
//!   Storm node unreachable (sends fail at once, `info` says so); the first answer after that
//!   registers and subscribes again (a restarted Storm node has forgotten us).

use super::rgbd::Dispatch;
use crate::bus::client::{Client, ClientError, Dial, Liveness, SharedClient};
use crate::storage::storm::{StormClient, StormError};
use crate::wire::api::rgb::RGB_STORM_APP;
use crate::wire::api::storm::{StormMsg, TransferInfo, TransferState};
use crate::wire::api::{code, ApiError, Msg, ServiceId};
use crate::wire::limits::MAX_CONSIGNMENT;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::bus::client::{DEAD_AFTER, HEARTBEAT};
/// The MIME type of a contract container.
pub const MIME: &str = "application/vnd.rgb.consignment";

/// The link.
pub struct StormLink {
    client: SharedClient,
    reachable: Arc<AtomicBool>,
}

impl StormLink {
    /// Starts the link to the STORM bus at `endpoint`; contracts received go to `dispatch`.
    pub fn start(
        zmq: zmq::Context,
        endpoint: Dial,
        timeout: Duration,
        dispatch: Arc<Dispatch>,
    ) -> Result<Arc<StormLink>, String> {
        let link = Arc::new(StormLink {
            client: SharedClient::new(zmq.clone(), endpoint.clone(), timeout),
            reachable: Arc::new(AtomicBool::new(false)),
        });
        let l = link.clone();
        std::thread::Builder::new()
            .name("rgb-storm".into())
            .spawn(move || listen(&zmq, &endpoint, &l, &dispatch))
            .map_err(|e| format!("cannot start the Storm link: {e}"))?;
        Ok(link)
    }

    /// The Storm node's STORM endpoint.
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    /// Whether the Storm node answered lately.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Runs `f` with the Storm node's client (one call of the shared connection at a time).
    fn storm<T>(
        &self,
        f: impl FnOnce(&mut StormClient<'_>) -> Result<T, StormError>,
    ) -> Result<T, ApiError> {
        self.client
            .with(
                |c, timeout| f(&mut StormClient::new(c, timeout)),
                |e| matches!(e, StormError::Client(ClientError::Failure { .. })),
            )
            .map_err(|e| ApiError::new(e.code(), format!("the Storm node: {e}")))
    }

    /// Offers the consignment `bytes` of `contract_id` to node `node_id` through the Storm
    /// node: stored as chunks (pipelined), made a container, offered. A line saying what was
    /// done.
    pub fn send(
        &self,
        node_id: NodeId,
        contract_id: &str,
        bytes: &[u8],
    ) -> Result<String, ApiError> {
        if !self.reachable() {
            return Err(ApiError::new(
                code::NO_ROUTE,
                format!("the Storm node at {} is unreachable", self.endpoint()),
            ));
        }
        let container = self.storm(|s| {
            let info = s.containerize(bytes, MIME, contract_id)?;
            s.send(node_id, info.id, RGB_STORM_APP)?;
            Ok(info.id)
        })?;
        Ok(format!(
            "contract {contract_id} offered to {node_id} as container {container}"
        ))
    }

    /// The consignment in a received container: assembled (checked) by the Storm node, then
    /// its chunks read and checked here.
    fn fetch(&self, id: ContainerId) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        self.storm(|s| {
            s.assemble(&id, MAX_CONSIGNMENT as u64, |data| {
                out.extend_from_slice(data);
                Ok(())
            })
        })?;
        Ok(out)
    }

    /// An offer or a finished download of the Storm node.
    fn transfer(&self, t: &TransferInfo, received: bool, dispatch: &Dispatch) {
        if t.app != RGB_STORM_APP {
            return;
        }
        let id = t.container_id.to_string();
        if received {
            match self.fetch(t.container_id) {
                Ok(bytes) => dispatch.received(t.peer, t.container_id, bytes),
                Err(ApiError { message: why, .. }) => {
                    tracing::warn!(container = %id, "a contract container could not be read: {why}")
                }
            }
        } else if t.state == TransferState::Offered {
            if t.size > MAX_CONSIGNMENT as u64 {
                tracing::warn!(container = %id, size = t.size, "a contract offer above {MAX_CONSIGNMENT} bytes is not accepted");
                return;
            }
            if let Err(ApiError { message: why, .. }) = self.storm(|s| s.accept(t.container_id)) {
                tracing::warn!(container = %id, "accepting a contract offer failed: {why}");
            }
        }
    }
}

/// The receiving thread: registration, subscription, heartbeat, notifications.
fn listen(zmq: &zmq::Context, endpoint: &Dial, link: &StormLink, dispatch: &Dispatch) {
    let mut client: Option<Client> = None;
    let mut live = Liveness::new(Instant::now());
    let mut last_ping = Instant::now() - HEARTBEAT;
    let mut ping_id = 0;
    // The request ids of our registration (container_received for the app comes with it) and
    // of our transfer subscription (offers; it also carries container_received, ignored).
    let mut reg_id = None;
    loop {
        if client.is_none() {
            match Client::dial(zmq, endpoint, DEAD_AFTER) {
                Ok(c) => {
                    client = Some(c);
                    live.opened(Instant::now());
                }
                Err(e) => {
                    tracing::debug!("the Storm node is not there yet: {e}");
                    std::thread::sleep(HEARTBEAT);
                    continue;
                }
            }
        }
        let now = Instant::now();
        if !live.alive(now) && link.reachable.swap(false, Ordering::AcqRel) {
            tracing::warn!(storm = %endpoint.shown(), "the Storm node is unreachable");
        }
        if matches!(endpoint, Dial::Remote(..)) && live.stale(now) {
            client = None;
            continue;
        }
        let Some(c) = client.as_mut() else { continue };
        if last_ping.elapsed() >= HEARTBEAT {
            last_ping = Instant::now();
            match c.send(&ServiceId::Stormd, Msg::GetInfo) {
                Ok(id) => ping_id = id,
                Err(_) => {
                    client = None;
                    continue;
                }
            }
        }
        let env = match c.recv(Duration::from_millis(200)) {
            Ok(env) => env,
            Err(ClientError::Timeout(_)) => continue,
            Err(e) => {
                tracing::debug!("the Storm link socket failed: {e}");
                client = None;
                continue;
            }
        };
        match env.msg {
            Msg::NodeInfo(_) if env.request_id == ping_id => {
                live.heard(Instant::now());
                if !link.reachable.load(Ordering::Acquire) {
                    // (Re)joined: register the app and subscribe to transfers.
                    let reg = c.send(
                        &ServiceId::Stormd,
                        StormMsg::RegisterApp {
                            app: RGB_STORM_APP,
                            name: "rgb-contracts".into(),
                        }
                        .into(),
                    );
                    let sub = c.send(&ServiceId::Stormd, StormMsg::TransferSubscribe(None).into());
                    if let (Ok(reg), Ok(_)) = (reg, sub) {
                        reg_id = Some(reg);
                        link.reachable.store(true, Ordering::Release);
                        tracing::info!(storm = %endpoint.shown(), "attached to the Storm node as app 0x0010");
                    }
                }
            }
            Msg::Storm(StormMsg::TransferProgress(t)) => link.transfer(&t, false, dispatch),
            Msg::Storm(StormMsg::ContainerReceived(t)) if Some(env.request_id) == reg_id => {
                link.transfer(&t, true, dispatch)
            }
            Msg::Failure { code, message } => {
                tracing::warn!("the Storm node refused: {message} ({code:#06x})");
                if code != code::NO_ROUTE {
                    // E.g. the app id taken: try again on the next heartbeat answer.
                    link.reachable.store(false, Ordering::Release);
                }
            }
            _ => {}
        }
    }
}
