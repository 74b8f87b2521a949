//! The structures in the bodies of the Storm node's messages (docs/API.md, "Storm requests"),
//! and the STORE tables and keys they speak of.

use crate::wire::limits::MAX_TEXT;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ContainerHeader, ContainerId};
use crate::wire::strict::{decode_string, encode_string, Reader, Strict, StrictError};

/// The STORE tables that are part of the Storm node's API (docs/API.md, "Storm requests"): the
/// node keeps its containers, transfers and chat there, and a client reads (and, for chunks,
/// writes) them like any table.
pub mod tables {
    /// Chunks, under their chunk id (`store_chunk`; `containerize` reads them from here).
    pub const CHUNKS: &str = "chunks";
    /// Containers, under their container id: the strict-encoded container.
    pub const CONTAINERS: &str = "containers";
    /// Containers shared with peers, under SHA256(peer ‖ container id): peer ‖ container id ‖
    /// app (only a peer a container was sent to may pull it).
    pub const SHARES: &str = "shares";
    /// Downloads under way, under the container id: what resumes them after a restart.
    pub const DOWNLOADS: &str = "downloads";
    /// Chat messages (see `actors::storm::chat` for the key).
    pub const CHAT: &str = "chat";
}

/// A key of a STORE table: 32 bytes (a chunk's id in `chunks`, a container's in
/// `containers`, any 32 bytes elsewhere).
pub type Key = [u8; 32];

/// One chat message (kept in the STORE table `chat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEntry {
    /// The peer (its LNP node's id).
    pub peer: NodeId,
    /// Sent by us (1) or by the peer (0).
    pub outgoing: bool,
    /// Unix time in milliseconds when it was sent or received.
    pub time_ms: u64,
    /// The text.
    pub text: String,
}

impl Strict for ChatEntry {
    const MIN_SIZE: usize = 33 + 1 + 8 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.peer.strict_encode(out)?;
        self.outgoing.strict_encode(out)?;
        self.time_ms.strict_encode(out)?;
        encode_string(&self.text, MAX_TEXT, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(ChatEntry {
            peer: Strict::strict_decode(r)?,
            outgoing: bool::strict_decode(r)?,
            time_ms: u64::strict_decode(r)?,
            text: decode_string(r, MAX_TEXT)?,
        })
    }
}

/// What a transfer is doing ([`TransferInfo::state`]); a `u8` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferState {
    /// 0: offered by the peer, not accepted.
    Offered = 0,
    /// 1: accepted: asking for the header and chunk list.
    Header = 1,
    /// 2: fetching chunks.
    Chunks = 2,
    /// 3: waiting for the peer (unreachable, or it stopped answering); retried by itself.
    Waiting = 3,
    /// 4: received, checked and stored.
    Received = 4,
    /// 5: given up (the peer refused, or sent a container that does not check out).
    Failed = 5,
    /// 6: ours, offered to the peer, which may pull it.
    Shared = 6,
}

impl TransferState {
    /// Every state, by value.
    pub const ALL: [TransferState; 7] = [
        TransferState::Offered,
        TransferState::Header,
        TransferState::Chunks,
        TransferState::Waiting,
        TransferState::Received,
        TransferState::Failed,
        TransferState::Shared,
    ];

    /// Its name, as `nodectl` shows it.
    pub fn name(self) -> &'static str {
        match self {
            TransferState::Offered => "offered",
            TransferState::Header => "header",
            TransferState::Chunks => "chunks",
            TransferState::Waiting => "waiting",
            TransferState::Received => "received",
            TransferState::Failed => "failed",
            TransferState::Shared => "shared",
        }
    }
}

impl Strict for TransferState {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        (*self as u8).strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let tag = u8::strict_decode(r)?;
        TransferState::ALL
            .get(usize::from(tag))
            .copied()
            .ok_or(StrictError::UnknownTag {
                ty: "transfer state",
                tag,
            })
    }
}

/// A transfer: an offer, a download or a container shared with a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferInfo {
    /// The container.
    pub container_id: ContainerId,
    /// The peer (its LNP node's id).
    pub peer: NodeId,
    /// The Storm app it is meant for.
    pub app: u16,
    /// What it is doing.
    pub state: TransferState,
    /// Content size from the header.
    pub size: u64,
    /// Distinct chunks (0 until the chunk list is known).
    pub chunks: u32,
    /// Chunks stored.
    pub have: u32,
    /// Chunks that were already stored when this run of the node started the download.
    pub had: u32,
    /// Chunks received from the peer in this run of the node.
    pub fetched: u32,
    /// Chunks sent to the peer (a shared container) since the node started.
    pub served: u32,
    /// Why it waits or failed (empty otherwise).
    pub note: String,
}

impl Strict for TransferInfo {
    const MIN_SIZE: usize = 32 + 33 + 2 + 1 + 8 + 4 * 5 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.container_id.strict_encode(out)?;
        self.peer.strict_encode(out)?;
        self.app.strict_encode(out)?;
        self.state.strict_encode(out)?;
        self.size.strict_encode(out)?;
        for n in [self.chunks, self.have, self.had, self.fetched, self.served] {
            n.strict_encode(out)?;
        }
        encode_string(&self.note, MAX_TEXT, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(TransferInfo {
            container_id: Strict::strict_decode(r)?,
            peer: Strict::strict_decode(r)?,
            app: u16::strict_decode(r)?,
            state: TransferState::strict_decode(r)?,
            size: u64::strict_decode(r)?,
            chunks: u32::strict_decode(r)?,
            have: u32::strict_decode(r)?,
            had: u32::strict_decode(r)?,
            fetched: u32::strict_decode(r)?,
            served: u32::strict_decode(r)?,
            note: decode_string(r, MAX_TEXT)?,
        })
    }
}

/// A table and its number of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Name.
    pub name: String,
    /// Keys.
    pub count: u64,
}

/// A container as listed: id, header, number of chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Container id.
    pub id: ContainerId,
    /// Header.
    pub header: ContainerHeader,
    /// Number of chunks.
    pub chunks: u32,
}

/// A registered app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// App id.
    pub app: u16,
    /// Name.
    pub name: String,
}

impl Strict for ContainerInfo {
    const MIN_SIZE: usize = 32 + ContainerHeader::MIN_SIZE + 4;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.id.strict_encode(out)?;
        self.header.strict_encode(out)?;
        self.chunks.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(ContainerInfo {
            id: Strict::strict_decode(r)?,
            header: ContainerHeader::strict_decode(r)?,
            chunks: u32::strict_decode(r)?,
        })
    }
}
