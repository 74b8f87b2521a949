//! The RGB node's link to a Storm node (`--storm <STORM bus endpoint>`, `[rgb] storm`): RGB
//! contracts travel between nodes as Storm containers of the extension app RgbContracts
//! (0x0010, [`RGB_STORM_APP`]).
//!
//! - Sending ([`StormLink::send`], from a worker): the binary consignment is cut into chunks
//!   (`store_chunk` to `stored`), made a container (`containerize` to `stormd`, MIME
//!   [`MIME`], the contract id as its info) and offered to the peer (`send_container`, app
//!   0x0010). One request at a time over one shared client.
//! - Receiving (a thread with its own DEALER): registered as app 0x0010 and subscribed to
//!   transfers, it accepts every offer for the app that is at most [`MAX_CONSIGNMENT`] bytes
//!   (the RGB node validates what it gets; Storm bounds offers per peer); on
//!   `container_received` it assembles the container, reads its chunks and hands the
//!   consignment to [`Dispatch::received`]: a worker validates it, imports it only if valid,
//!   and the API's `contract_received` subscribers hear the outcome.
//! - Liveness: `info` to `stormd` every [`HEARTBEAT`]; no answer for [`DEAD_AFTER`] marks the
//!   Storm node unreachable (sends fail at once, `info` says so); the first answer after that
//!   registers and subscribes again (a restarted Storm node has forgotten us).

use super::rgbd::Dispatch;
use crate::bus::client::{Client, ClientError, Dial, Liveness, SharedClient};
use crate::storage::stored_id;
use crate::wire::api::rgb::RGB_STORM_APP;
use crate::wire::api::storm::{StormMsg, TransferInfo, TransferState};
use crate::wire::api::{code, ApiError, Msg, ServiceId};
use crate::wire::limits::{CONTAINER_CHUNK, MAX_CONSIGNMENT};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ContainerHeader, ContainerId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::bus::client::{DEAD_AFTER, HEARTBEAT};
/// The MIME type of a contract container.
pub const MIME: &str = "application/vnd.rgb.consignment";
/// The Storm table of chunks (`stormd::CHUNKS`).
const CHUNKS: &str = "chunks";

/// The link.
pub struct StormLink {
    client: SharedClient,
    reachable: Arc<AtomicBool>,
}

fn failed(e: ClientError) -> ApiError {
    match e {
        ClientError::Failure { code, message } => {
            ApiError::new(code, format!("the Storm node: {message}"))
        }
        ClientError::Timeout(_) => ApiError::new(code::TIMEOUT, format!("the Storm node: {e}")),
        other => ApiError::new(code::NO_ROUTE, format!("the Storm node: {other}")),
    }
}

fn unexpected(m: &Msg) -> ApiError {
    ApiError::new(
        code::SERVICE_FAILED,
        format!("unexpected reply {:#06x} from the Storm node", m.type_id()),
    )
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

    fn call(&self, dst: &ServiceId, msg: StormMsg) -> Result<Msg, ApiError> {
        self.client.request(dst, msg.into()).map_err(failed)
    }

    /// Offers the consignment `bytes` of `contract_id` to node `node_id` through the Storm
    /// node; a line saying what was done.
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
        let mut chunks = Vec::new();
        for piece in bytes.chunks(CONTAINER_CHUNK) {
            match self.call(
                &stored_id(),
                StormMsg::StoreChunk {
                    table: CHUNKS.into(),
                    data: piece.to_vec(),
                },
            )? {
                Msg::Storm(StormMsg::ChunkStored(id)) => chunks.push(id),
                m => return Err(unexpected(&m)),
            }
        }
        let header = ContainerHeader {
            version: 0,
            mime: MIME.into(),
            info: contract_id.into(),
            size: bytes.len() as u64,
        };
        let container = match self.call(
            &ServiceId::Stormd,
            StormMsg::Containerize { header, chunks },
        )? {
            Msg::Storm(StormMsg::ContainerCreated(info)) => info.id,
            m => return Err(unexpected(&m)),
        };
        self.call(
            &ServiceId::Stormd,
            StormMsg::SendContainer {
                node_id,
                container_id: container,
                app: RGB_STORM_APP,
            },
        )?;
        Ok(format!(
            "contract {contract_id} offered to {} as container {}",
            node_id, container
        ))
    }

    /// The consignment in a received container: assembled (checked) by the Storm node, then
    /// its chunks read.
    fn fetch(&self, id: ContainerId) -> Result<Vec<u8>, ApiError> {
        let container = match self.call(&ServiceId::Stormd, StormMsg::Assemble(id))? {
            Msg::Storm(StormMsg::ContainerData { container, .. }) => container,
            m => return Err(unexpected(&m)),
        };
        if container.header.size > MAX_CONSIGNMENT as u64 {
            return Err(ApiError::new(
                code::TOO_LARGE,
                format!(
                    "a container of {} bytes (a consignment is at most {MAX_CONSIGNMENT})",
                    container.header.size
                ),
            ));
        }
        let mut out = Vec::with_capacity(container.header.size as usize);
        for chunk in &container.chunks {
            match self.call(
                &stored_id(),
                StormMsg::RetrieveChunk {
                    table: CHUNKS.into(),
                    id: *chunk,
                },
            )? {
                Msg::Storm(StormMsg::Value(v)) => out.extend_from_slice(&v),
                m => return Err(unexpected(&m)),
            }
            if out.len() > MAX_CONSIGNMENT {
                return Err(ApiError::new(
                    code::TOO_LARGE,
                    "the container holds more than its header says",
                ));
            }
        }
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
            if let Err(ApiError { message: why, .. }) = self.call(
                &ServiceId::Stormd,
                StormMsg::AcceptContainer(t.container_id),
            ) {
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
