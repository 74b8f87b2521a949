//! Storm peer messages (storm-core 0.9's `p2p::Messages`), the payload of a Bifrost `msg` with
//! app `0x0001`: `type: u16 LE` ‖ fields, strict-encoded (docs/API.md, Storm; the vectors in
//! the tests are storm-core's own bytes).
//!
//! One Storm message is at most [`STORM_MAX_MESSAGE`] bytes (a Bifrost `msg` payload has a u16
//! length); every length is checked against that and against the bytes left before anything
//! is allocated.

use crate::wire::hex_id::hex_id;
use crate::wire::limits::{MAX_CONTAINER_CHUNKS, STORM_MAX_MESSAGE};
use crate::wire::storm::container::{ChunkId, Container, ContainerHeader, ContainerId};
use crate::wire::strict::{decode_bytes, encode_bytes, encode_len, Reader, Strict, StrictError};

/// Strict encoding 0.9's u16 length: the longest string, `bytes` or list.
const B16: usize = u16::MAX as usize;

/// A Storm app id (storm-core `StormApp`: 0 system, 1 chat, 2 file transfer, 0x10 RGB contracts,
/// 0x11 RGB transfers; 0x8000 and above are vendors').
pub type App = u16;

hex_id!(
    /// A message id (storm-core `MessageId`).
    MessageId,
    32,
    "a message id"
);

/// A message of a Storm app (`Mesg`): a reply to `parent_id`, a body, attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mesg {
    /// Parent message or topic.
    pub parent_id: MessageId,
    /// App-specific body.
    pub body: Vec<u8>,
    /// Ids of attached containers.
    pub container_ids: Vec<ContainerId>,
}

/// A topic (`Topic`): a body and attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    /// App-specific body.
    pub body: Vec<u8>,
    /// Ids of attached containers.
    pub container_ids: Vec<ContainerId>,
}

/// The message id that gives access to a container, and the container (`ContainerFullId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullId {
    /// The message defining access (zero when none).
    pub message_id: MessageId,
    /// The container.
    pub container_id: ContainerId,
}

/// A Storm peer message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StormP2p {
    /// 0x0002: which apps the peer runs.
    ListApps,
    /// 0x0003: the apps a node runs (a set, ascending).
    ActiveApps(Vec<App>),
    /// 0x0004: the topics of an app.
    ListTopics(App),
    /// 0x0005: answer to `ListTopics` (a set).
    AppTopics(App, Vec<MessageId>),
    /// 0x0006: propose a new topic.
    ProposeTopic(App, Topic),
    /// 0x0008: a message (chat text, an offer, ...).
    Post(App, Mesg),
    /// 0x000a: ask for a message.
    Read(App, MessageId),
    /// 0x000c: decline a message.
    Decline(App, MessageId),
    /// 0x000e: accept a message.
    Accept(App, MessageId),
    /// 0x0010: ask for a container's header and chunk list.
    PullContainer(App, FullId),
    /// 0x0011: announce a container.
    AnnounceContainer(App, ContainerHeader, FullId),
    /// 0x0012: refuse to give a container.
    Reject(App, FullId),
    /// 0x0013: a container's header and chunk list.
    PushContainer(App, Container),
    /// 0x0014: ask for chunks of a container (a set).
    PullChunk {
        /// The app.
        app: App,
        /// The message giving access.
        message_id: MessageId,
        /// The container.
        container_id: ContainerId,
        /// The chunks wanted, ascending.
        chunk_ids: Vec<ChunkId>,
    },
    /// 0x0015: one chunk.
    PushChunk {
        /// The app.
        app: App,
        /// The container.
        container_id: ContainerId,
        /// The chunk's id (SHA256 of u24 length ‖ data; the receiver checks it).
        chunk_id: ChunkId,
        /// The chunk's bytes (u24 length on the wire).
        data: Vec<u8>,
    },
}

/// Why a Storm message did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StormP2pError {
    /// Above [`STORM_MAX_MESSAGE`] bytes.
    TooLarge(usize),
    /// A type storm-core does not define.
    UnknownType(u16),
    /// A bad field, a set out of order or with duplicates, truncation or trailing bytes.
    Strict(StrictError),
}

impl From<StrictError> for StormP2pError {
    fn from(e: StrictError) -> Self {
        StormP2pError::Strict(e)
    }
}

impl std::fmt::Display for StormP2pError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StormP2pError::TooLarge(n) => {
                write!(
                    f,
                    "a Storm message of {n} bytes (at most {STORM_MAX_MESSAGE})"
                )
            }
            StormP2pError::UnknownType(t) => write!(f, "unknown Storm message type {t:#06x}"),
            StormP2pError::Strict(e) => write!(f, "bad Storm message: {e}"),
        }
    }
}

impl std::error::Error for StormP2pError {}

fn encode_ids<T: Strict>(ids: &[T], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(ids.len(), u16::MAX as usize, out)?;
    ids.iter().try_for_each(|id| id.strict_encode(out))
}

fn decode_ids<T: Strict>(r: &mut Reader<'_>) -> Result<Vec<T>, StrictError> {
    let n = r.len_prefix(u16::MAX as usize, T::MIN_SIZE)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(T::strict_decode(r)?);
    }
    Ok(v)
}

/// A set: ascending and without duplicates, as strict encoding 0.9 requires (decoders refuse
/// anything else).
fn decode_set<T: Ord + Copy>(v: Vec<T>) -> Result<Vec<T>, StrictError> {
    if v.windows(2).all(|w| w[0] < w[1]) {
        Ok(v)
    } else {
        Err(StrictError::InvalidValue(
            "a set out of order or with a duplicate",
        ))
    }
}

fn sorted_set<T: Ord + Copy>(v: &[T]) -> Vec<T> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.dedup();
    s
}

impl FullId {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.message_id.strict_encode(out)?;
        self.container_id.strict_encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<FullId, StrictError> {
        Ok(FullId {
            message_id: Strict::strict_decode(r)?,
            container_id: Strict::strict_decode(r)?,
        })
    }
}

impl StormP2p {
    /// A `Post` of `body` for `app`, with no parent and no attachments (chat, app messages).
    pub fn post(app: App, body: Vec<u8>) -> StormP2p {
        StormP2p::Post(
            app,
            Mesg {
                parent_id: MessageId::default(),
                body,
                container_ids: vec![],
            },
        )
    }

    /// The type id.
    pub fn type_id(&self) -> u16 {
        match self {
            StormP2p::ListApps => 0x0002,
            StormP2p::ActiveApps(_) => 0x0003,
            StormP2p::ListTopics(_) => 0x0004,
            StormP2p::AppTopics(..) => 0x0005,
            StormP2p::ProposeTopic(..) => 0x0006,
            StormP2p::Post(..) => 0x0008,
            StormP2p::Read(..) => 0x000a,
            StormP2p::Decline(..) => 0x000c,
            StormP2p::Accept(..) => 0x000e,
            StormP2p::PullContainer(..) => 0x0010,
            StormP2p::AnnounceContainer(..) => 0x0011,
            StormP2p::Reject(..) => 0x0012,
            StormP2p::PushContainer(..) => 0x0013,
            StormP2p::PullChunk { .. } => 0x0014,
            StormP2p::PushChunk { .. } => 0x0015,
        }
    }

    /// The app the message is for (`None` for the system messages).
    pub fn app(&self) -> Option<App> {
        match self {
            StormP2p::ListApps | StormP2p::ActiveApps(_) => None,
            StormP2p::ListTopics(a)
            | StormP2p::AppTopics(a, _)
            | StormP2p::ProposeTopic(a, _)
            | StormP2p::Post(a, _)
            | StormP2p::Read(a, _)
            | StormP2p::Decline(a, _)
            | StormP2p::Accept(a, _)
            | StormP2p::PullContainer(a, _)
            | StormP2p::AnnounceContainer(a, ..)
            | StormP2p::Reject(a, _)
            | StormP2p::PushContainer(a, _)
            | StormP2p::PullChunk { app: a, .. }
            | StormP2p::PushChunk { app: a, .. } => Some(*a),
        }
    }

    /// The message's bytes (sets are written ascending, without duplicates).
    pub fn encode(&self) -> Result<Vec<u8>, StrictError> {
        let mut out = Vec::with_capacity(64);
        self.type_id().strict_encode(&mut out)?;
        let o = &mut out;
        match self {
            StormP2p::ListApps => {}
            StormP2p::ActiveApps(apps) => {
                let apps = sorted_set(apps);
                encode_len(apps.len(), u16::MAX as usize, o)?;
                apps.iter().try_for_each(|a| a.strict_encode(o))?;
            }
            StormP2p::ListTopics(app) => app.strict_encode(o)?,
            StormP2p::AppTopics(app, ids) => {
                app.strict_encode(o)?;
                encode_ids(&sorted_set(ids), o)?;
            }
            StormP2p::ProposeTopic(app, t) => {
                app.strict_encode(o)?;
                encode_bytes(&t.body, B16, o)?;
                encode_ids(&t.container_ids, o)?;
            }
            StormP2p::Post(app, m) => {
                app.strict_encode(o)?;
                m.parent_id.strict_encode(o)?;
                encode_bytes(&m.body, B16, o)?;
                encode_ids(&m.container_ids, o)?;
            }
            StormP2p::Read(app, id) | StormP2p::Decline(app, id) | StormP2p::Accept(app, id) => {
                app.strict_encode(o)?;
                id.strict_encode(o)?;
            }
            StormP2p::PullContainer(app, id) | StormP2p::Reject(app, id) => {
                app.strict_encode(o)?;
                id.encode(o)?;
            }
            StormP2p::AnnounceContainer(app, header, id) => {
                app.strict_encode(o)?;
                header.strict_encode(o)?;
                id.encode(o)?;
            }
            StormP2p::PushContainer(app, c) => {
                app.strict_encode(o)?;
                c.strict_encode(o)?;
            }
            StormP2p::PullChunk {
                app,
                message_id,
                container_id,
                chunk_ids,
            } => {
                app.strict_encode(o)?;
                message_id.strict_encode(o)?;
                container_id.strict_encode(o)?;
                encode_ids(&sorted_set(chunk_ids), o)?;
            }
            StormP2p::PushChunk {
                app,
                container_id,
                chunk_id,
                data,
            } => {
                app.strict_encode(o)?;
                container_id.strict_encode(o)?;
                chunk_id.strict_encode(o)?;
                if data.len() > 0xFF_FFFF {
                    return Err(StrictError::ExceedMaxItems {
                        len: data.len(),
                        max: 0xFF_FFFF,
                    });
                }
                o.extend_from_slice(&(data.len() as u32).to_le_bytes()[..3]);
                o.extend_from_slice(data);
            }
        }
        if out.len() > STORM_MAX_MESSAGE {
            return Err(StrictError::ExceedMaxItems {
                len: out.len(),
                max: STORM_MAX_MESSAGE,
            });
        }
        Ok(out)
    }

    /// Decodes one message, which must fill `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<StormP2p, StormP2pError> {
        if bytes.len() > STORM_MAX_MESSAGE {
            return Err(StormP2pError::TooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let r = &mut r;
        let type_id = u16::strict_decode(r)?;
        let app = |r: &mut Reader<'_>| u16::strict_decode(r);
        let msg = match type_id {
            0x0002 => StormP2p::ListApps,
            0x0003 => {
                let n = r.len_prefix(u16::MAX as usize, 2)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(u16::strict_decode(r)?);
                }
                StormP2p::ActiveApps(decode_set(v)?)
            }
            0x0004 => StormP2p::ListTopics(app(r)?),
            0x0005 => StormP2p::AppTopics(app(r)?, decode_set(decode_ids(r)?)?),
            0x0006 => StormP2p::ProposeTopic(
                app(r)?,
                Topic {
                    body: decode_bytes(r, B16)?,
                    container_ids: decode_ids(r)?,
                },
            ),
            0x0008 => StormP2p::Post(
                app(r)?,
                Mesg {
                    parent_id: Strict::strict_decode(r)?,
                    body: decode_bytes(r, B16)?,
                    container_ids: decode_ids(r)?,
                },
            ),
            0x000a => StormP2p::Read(app(r)?, Strict::strict_decode(r)?),
            0x000c => StormP2p::Decline(app(r)?, Strict::strict_decode(r)?),
            0x000e => StormP2p::Accept(app(r)?, Strict::strict_decode(r)?),
            0x0010 => StormP2p::PullContainer(app(r)?, FullId::decode(r)?),
            0x0011 => {
                let a = app(r)?;
                let header = ContainerHeader::strict_decode(r)?;
                StormP2p::AnnounceContainer(a, header, FullId::decode(r)?)
            }
            0x0012 => StormP2p::Reject(app(r)?, FullId::decode(r)?),
            0x0013 => {
                let a = app(r)?;
                let c = Container::strict_decode(r)?;
                if c.chunks.len() > MAX_CONTAINER_CHUNKS {
                    return Err(StrictError::ExceedMaxItems {
                        len: c.chunks.len(),
                        max: MAX_CONTAINER_CHUNKS,
                    }
                    .into());
                }
                StormP2p::PushContainer(a, c)
            }
            0x0014 => StormP2p::PullChunk {
                app: app(r)?,
                message_id: Strict::strict_decode(r)?,
                container_id: Strict::strict_decode(r)?,
                chunk_ids: decode_set(decode_ids(r)?)?,
            },
            0x0015 => {
                let a = app(r)?;
                let container_id = Strict::strict_decode(r)?;
                let chunk_id = Strict::strict_decode(r)?;
                let len = r.take(3)?;
                let n = u32::from_le_bytes([len[0], len[1], len[2], 0]) as usize;
                StormP2p::PushChunk {
                    app: a,
                    container_id,
                    chunk_id,
                    data: r.take(n)?.to_vec(),
                }
            }
            other => return Err(StormP2pError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::storm::container::chunk_id;
    use bitcoin::hex::FromHex;

    fn hex(s: &str) -> Vec<u8> {
        Vec::<u8>::from_hex(&s.replace(' ', "")).unwrap()
    }

    const CONTAINER_ID: &str = "77d75cff43f5c07b5eec8b2b1a8461512e24c9a5c468a95e7eb7ee0c9046dab6";
    const HELLO_ID: &str = "f28ec83406d9fa6bc8b11b6b4aaccd458d1482a0e1ba5b0c9867df3130465200";
    const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn header() -> ContainerHeader {
        ContainerHeader {
            version: 0,
            mime: "text/plain".into(),
            info: "greeting".into(),
            size: 5,
        }
    }

    fn id<T: From<[u8; 32]>>(s: &str) -> T {
        <[u8; 32]>::from_hex(s).unwrap().into()
    }

    #[test]
    fn storm_core_vectors() {
        let vectors = [
            (
                StormP2p::PushChunk {
                    app: 0x0011,
                    container_id: id(CONTAINER_ID),
                    chunk_id: id(HELLO_ID),
                    data: b"hello".to_vec(),
                },
                format!("1500 1100 {CONTAINER_ID} {HELLO_ID} 05000068656c6c6f"),
            ),
            (
                StormP2p::PullChunk {
                    app: 0x0011,
                    message_id: MessageId([0; 32]),
                    container_id: id(CONTAINER_ID),
                    chunk_ids: vec![id(HELLO_ID)],
                },
                format!("1400 1100 {ZERO} {CONTAINER_ID} 0100 {HELLO_ID}"),
            ),
            (
                StormP2p::AnnounceContainer(
                    0x0011,
                    header(),
                    FullId {
                        message_id: MessageId([0; 32]),
                        container_id: id(CONTAINER_ID),
                    },
                ),
                format!("1100 1100 00000a00746578742f706c61696e08006772656574696e670500000000000000 {ZERO} {CONTAINER_ID}"),
            ),
            (
                StormP2p::Post(
                    0x0001,
                    Mesg {
                        parent_id: MessageId([0; 32]),
                        body: b"hi".to_vec(),
                        container_ids: vec![],
                    },
                ),
                format!("0800 0100 {ZERO} 0200 6869 0000"),
            ),
        ];
        for (msg, bytes) in vectors {
            let bytes = hex(&bytes);
            assert_eq!(msg.encode().unwrap(), bytes, "{msg:?}");
            assert_eq!(StormP2p::decode(&bytes).unwrap(), msg);
        }
        assert_eq!(chunk_id(b"hello"), id::<ChunkId>(HELLO_ID));
    }

    #[test]
    fn every_type_roundtrips_and_bad_input_fails_before_allocating() {
        let full = FullId {
            message_id: MessageId([1; 32]),
            container_id: ContainerId([2; 32]),
        };
        let all = vec![
            StormP2p::ListApps,
            StormP2p::ActiveApps(vec![1, 2, 0x11]),
            StormP2p::ListTopics(1),
            StormP2p::AppTopics(1, vec![MessageId([3; 32]), MessageId([4; 32])]),
            StormP2p::ProposeTopic(
                1,
                Topic {
                    body: b"t".to_vec(),
                    container_ids: vec![ContainerId([5; 32])],
                },
            ),
            StormP2p::Read(1, MessageId([6; 32])),
            StormP2p::Decline(1, MessageId([6; 32])),
            StormP2p::Accept(1, MessageId([6; 32])),
            StormP2p::PullContainer(2, full),
            StormP2p::Reject(2, full),
            StormP2p::PushContainer(
                2,
                Container {
                    header: header(),
                    chunks: vec![ChunkId([7; 32]); 3],
                },
            ),
        ];
        for m in all {
            let b = m.encode().unwrap();
            assert_eq!(StormP2p::decode(&b).unwrap(), m);
            let mut longer = b.clone();
            longer.push(0);
            assert!(StormP2p::decode(&longer).is_err(), "trailing bytes");
            assert!(StormP2p::decode(&b[..b.len() - 1]).is_err(), "truncated");
        }
        // Sets: written sorted; out of order or repeated on the wire is refused.
        let m = StormP2p::ActiveApps(vec![3, 1, 3]);
        assert_eq!(
            StormP2p::decode(&m.encode().unwrap()).unwrap(),
            StormP2p::ActiveApps(vec![1, 3])
        );
        assert!(StormP2p::decode(&hex("0300 0200 0300 0100")).is_err());
        // A chunk length of 16 MiB in a 80-byte message, a count of 65,535 ids in 10 bytes.
        let mut push = hex(&format!("1500 1100 {CONTAINER_ID} {HELLO_ID} ffffff"));
        push.extend_from_slice(b"abc");
        assert!(StormP2p::decode(&push).is_err());
        assert!(StormP2p::decode(&hex(&format!("1400 1100 {ZERO} {ZERO} ffff 00"))).is_err());
        assert!(matches!(
            StormP2p::decode(&hex("9999")),
            Err(StormP2pError::UnknownType(0x9999))
        ));
        assert!(matches!(
            StormP2p::decode(&vec![0; STORM_MAX_MESSAGE + 1]),
            Err(StormP2pError::TooLarge(_))
        ));
        // A chunk too big for one message does not encode.
        let big = StormP2p::PushChunk {
            app: 2,
            container_id: ContainerId([0; 32]),
            chunk_id: ChunkId([0; 32]),
            data: vec![0; STORM_MAX_MESSAGE],
        };
        assert!(big.encode().is_err());
    }
}
