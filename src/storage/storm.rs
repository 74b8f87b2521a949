//! [`StormClient`]: the client side of a Storm node's containers and transfers, over one bus
//! client (docs/API.md, "Containers", "Container transfers"). `nodectl storm` and the RGB node
//! (which sends contracts as containers) both use it.
//!
//! - [`StormClient::containerize`]: the content cut into chunks, uploaded with
//!   [`WINDOW`] `store_chunk`s in flight (so `stored` commits them in groups), each reply
//!   checked to be its chunk id, then `containerize`.
//! - [`StormClient::assemble`]: `assemble` (the node checks every chunk), then the chunks
//!   fetched with [`WINDOW`] in flight, each hashed again here, handed over in order, and the
//!   sizes added up.
//! - [`StormClient::follow_download`]: a download followed to its end (`transfer_subscribe`).

use crate::bus::client::{Client, ClientError, PipelineError, Step};
use crate::storage::stored_id;
use crate::wire::api::storm::tables::CHUNKS;
use crate::wire::api::storm::{ContainerInfo, StormMsg, TransferInfo, TransferState};
use crate::wire::api::{code, Code, Msg, ServiceId};
use crate::wire::limits::CONTAINER_CHUNK;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{chunk_id, split, Container, ContainerHeader, ContainerId};
use std::time::Duration;

/// Requests in flight while chunks go up or come down (lets `stored` group-commit them).
pub const WINDOW: usize = 32;

/// Why a Storm call did not succeed.
#[derive(Debug)]
pub enum StormError {
    /// A request failed or could not be made (the node's failure, no answer, the socket).
    Client(ClientError),
    /// Item `item` of a pipelined batch got a failure.
    Failed {
        /// Its index.
        item: usize,
        /// Failure code.
        code: Code,
        /// Message.
        message: String,
    },
    /// What the node sent does not check out (an unexpected reply, a chunk that does not hash
    /// to its id, sizes that do not add up, a container above the size asked for).
    Data(String),
    /// The caller refused a chunk (e.g. a write failed).
    Sink(String),
}

impl StormError {
    /// The failure code a service answers with when this error ends its request.
    pub fn code(&self) -> Code {
        match self {
            StormError::Client(ClientError::Failure { code, .. }) => *code,
            StormError::Client(ClientError::Timeout(_)) => code::TIMEOUT,
            StormError::Client(_) => code::NO_ROUTE,
            StormError::Failed { code, .. } => *code,
            StormError::Data(_) => code::INVALID_DATA,
            StormError::Sink(_) => code::SERVICE_FAILED,
        }
    }
}

impl std::fmt::Display for StormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StormError::Client(e) => e.fmt(f),
            StormError::Failed {
                item,
                code,
                message,
            } => write!(f, "item {item}: failure {code:#06x}: {message}"),
            StormError::Data(why) | StormError::Sink(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StormError {}

impl From<ClientError> for StormError {
    fn from(e: ClientError) -> StormError {
        StormError::Client(e)
    }
}

impl From<PipelineError> for StormError {
    fn from(e: PipelineError) -> StormError {
        match e {
            PipelineError::Failed {
                item,
                code,
                message,
            } => StormError::Failed {
                item,
                code,
                message,
            },
            PipelineError::Client(e) => StormError::Client(e),
            PipelineError::Reply(why) => StormError::Data(why),
        }
    }
}

fn unexpected(m: &Msg) -> StormError {
    StormError::Data(format!(
        "unexpected reply {:#06x} from the Storm node",
        m.type_id()
    ))
}

/// A Storm node's containers and transfers, over `client`.
pub struct StormClient<'a> {
    client: &'a mut Client,
    /// How long each reply may take.
    timeout: Duration,
}

impl<'a> StormClient<'a> {
    /// The Storm node `client` is connected to; each reply within `timeout`.
    pub fn new(client: &'a mut Client, timeout: Duration) -> StormClient<'a> {
        StormClient { client, timeout }
    }

    fn request(&mut self, dst: &ServiceId, msg: StormMsg) -> Result<Msg, StormError> {
        Ok(self.client.request(dst, msg.into(), self.timeout, |_| ())?)
    }

    /// Makes `content` a container (MIME `mime`, description `info`): its chunks uploaded,
    /// then `containerize`. Its id and header.
    pub fn containerize(
        &mut self,
        content: &[u8],
        mime: &str,
        info: &str,
    ) -> Result<ContainerInfo, StormError> {
        let ids: Vec<_> = split(content, CONTAINER_CHUNK).map(chunk_id).collect();
        // Each upload is built when the window has room: at most WINDOW chunks are copied at
        // once.
        let uploads = split(content, CONTAINER_CHUNK).map(|part| {
            Msg::from(StormMsg::StoreChunk {
                table: CHUNKS.into(),
                data: part.to_vec(),
            })
        });
        self.client.pipeline(
            &stored_id(),
            uploads,
            WINDOW,
            self.timeout,
            |i, reply| match reply {
                Msg::Storm(StormMsg::ChunkStored(id)) if id == ids[i] => Ok(()),
                other => Err(format!("chunk {i}: {}", unexpected(&other))),
            },
        )?;
        let header = ContainerHeader {
            version: 0,
            mime: mime.into(),
            info: info.into(),
            size: content.len() as u64,
        };
        let reply = self.request(
            &ServiceId::Stormd,
            StormMsg::Containerize {
                header,
                chunks: ids,
            },
        )?;
        match reply {
            Msg::Storm(StormMsg::ContainerCreated(info)) => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Assembles container `id` (at most `max_size` bytes): the node checks it, then each
    /// chunk is fetched, hashed and handed to `sink` in order. The container, once every chunk
    /// checked out and the sizes added up.
    pub fn assemble(
        &mut self,
        id: &ContainerId,
        max_size: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<Container, StormError> {
        let container = match self.request(&ServiceId::Stormd, StormMsg::Assemble(*id))? {
            Msg::Storm(StormMsg::ContainerData { container, .. }) => container,
            other => return Err(unexpected(&other)),
        };
        if container.header.size > max_size {
            return Err(StormError::Data(format!(
                "a container of {} bytes (at most {max_size} here)",
                container.header.size
            )));
        }
        let chunks = &container.chunks;
        let reads = chunks.iter().map(|cid| {
            Msg::from(StormMsg::RetrieveChunk {
                table: CHUNKS.into(),
                id: *cid,
            })
        });
        let mut size = 0u64;
        let mut refused = None;
        let fetched =
            self.client
                .pipeline(&stored_id(), reads, WINDOW, self.timeout, |i, reply| {
                    let Msg::Storm(StormMsg::Value(data)) = reply else {
                        return Err(unexpected(&reply).to_string());
                    };
                    if chunk_id(&data) != chunks[i] {
                        return Err(format!("chunk #{i} {} does not hash to its id", chunks[i]));
                    }
                    size += data.len() as u64;
                    if size > container.header.size {
                        return Err("the chunks hold more than the header says".into());
                    }
                    sink(&data).inspect_err(|why| refused = Some(why.clone()))
                });
        match (fetched, refused) {
            (Err(_), Some(why)) => return Err(StormError::Sink(why)),
            (Err(e), None) => return Err(e.into()),
            (Ok(_), _) => {}
        }
        if size != container.header.size {
            return Err(StormError::Data(format!(
                "the chunks hold {size} bytes, the header says {}",
                container.header.size
            )));
        }
        Ok(container)
    }

    /// `send_container`: offers container `id` to the Storm node of `node_id` for `app`.
    pub fn send(&mut self, node_id: NodeId, id: ContainerId, app: u16) -> Result<(), StormError> {
        let msg = StormMsg::SendContainer {
            node_id,
            container_id: id,
            app,
        };
        self.request(&ServiceId::Stormd, msg).map(|_| ())
    }

    /// `accept_container`: downloads an offer.
    pub fn accept(&mut self, id: ContainerId) -> Result<(), StormError> {
        self.request(&ServiceId::Stormd, StormMsg::AcceptContainer(id))
            .map(|_| ())
    }

    /// Follows the download of `id` (`transfer_subscribe`) until it is received or failed:
    /// `on_event` sees each of its `transfer_progress` and its `container_received` (`true`).
    /// After `quiet` without news it subscribes again (the node proves it is alive).
    pub fn follow_download(
        &mut self,
        id: &ContainerId,
        quiet: Duration,
        mut on_event: impl FnMut(&TransferInfo, bool),
    ) -> Result<(), StormError> {
        let subscribe: Msg = StormMsg::TransferSubscribe(Some(*id)).into();
        match self
            .client
            .request(&ServiceId::Stormd, subscribe.clone(), self.timeout, |_| ())?
        {
            Msg::Success(_) => {}
            other => return Err(unexpected(&other)),
        }
        let followed =
            self.client
                .follow(&ServiceId::Stormd, subscribe, quiet, self.timeout, |env| {
                    let (t, done) = match &env.msg {
                        Msg::Storm(StormMsg::TransferProgress(t)) => (t, false),
                        Msg::Storm(StormMsg::ContainerReceived(t)) => (t, true),
                        _ => return Step::Other,
                    };
                    if t.container_id != *id || t.state == TransferState::Shared {
                        return Step::Event;
                    }
                    on_event(t, done);
                    if done || t.state == TransferState::Failed {
                        Step::Done
                    } else {
                        Step::Event
                    }
                });
        Ok(followed?)
    }
}
