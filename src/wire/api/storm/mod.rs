//! The Storm Node's messages: the set [`StormMsg`] (type ids 0x05xx; docs/API.md, "Storm requests").
//!
//! - STORE requests (0x0500..0x050F), served by `stored` on the STORE bus (and on the API bus):
//!   tables of 32-byte keys to values, content-addressed chunks, sets of ids.
//! - Container requests (0x0520..), served by `stormd` on every bus of the node.
//! - App messages (0x0530..), for extension apps on the STORM bus; chat (0x0540..);
//!   container transfers with peers (0x0550..).
//!
//! Values and chunks use a u32 length checked against [`MAX_VALUE`] and the bytes left before
//! anything is allocated.

use crate::wire::api::{message_set, BodyError};
use crate::wire::limits::{
    MAX_APP_PAYLOAD, MAX_CONTAINER_CHUNKS, MAX_IDS, MAX_LIST, MAX_POST_BODY, MAX_SERVICE_NAME,
    MAX_TABLE_NAME, MAX_TEXT, MAX_VALUE,
};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ChunkId, Container, ContainerHeader, ContainerId};
use crate::wire::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};

mod bodies;

pub use bodies::{
    tables, AppInfo, ChatEntry, ContainerInfo, Key, TableInfo, TransferInfo, TransferState,
};

message_set! {
    /// The Storm Node's messages (0x05xx; docs/API.md, "Storm requests").
    pub enum StormMsg: 0x05 {
        /// Request: every table with its number of keys.
        Tables = 0x0500 as Request,
        /// Final reply to `Tables`.
        TableList(Vec<TableInfo>) = 0x0501 as Final,
        /// Request: the number of keys in a table (0 for a table that does not exist).
        Count {
            /// Table name.
            table: String,
        } = 0x0502 as Request,
        /// Final reply to `Count`.
        Counted(u64) = 0x0503 as Final,
        /// Request: store a value under a key (replacing any); answered after the commit.
        Put {
            /// Table name.
            table: String,
            /// Key.
            key: Key,
            /// Value (at most `MAX_VALUE` bytes).
            value: Vec<u8>,
        } = 0x0504 as Request,
        /// Request: the value under a key (`NOT_FOUND` if absent).
        Get {
            /// Table name.
            table: String,
            /// Key.
            key: Key,
        } = 0x0505 as Request,
        /// Final reply to `Get` and `RetrieveChunk`.
        Value(Vec<u8>) = 0x0506 as Final,
        /// Request: remove a key (`NOT_FOUND` if absent); answered after the commit.
        Delete {
            /// Table name.
            table: String,
            /// Key.
            key: Key,
        } = 0x0507 as Request,
        /// Request: store a chunk under its chunk id; answered after the commit.
        StoreChunk {
            /// Table name.
            table: String,
            /// Chunk data (at most `MAX_CHUNK` bytes).
            data: Vec<u8>,
        } = 0x0508 as Request,
        /// Final reply to `StoreChunk`: the chunk id.
        ChunkStored(ChunkId) = 0x0509 as Final,
        /// Request: the chunk with this id (`NOT_FOUND` if absent); the reply is `Value`.
        RetrieveChunk {
            /// Table name.
            table: String,
            /// Chunk id.
            id: ChunkId,
        } = 0x050A as Request,
        /// Request: add ids to a set (a table whose values are empty); after the commit.
        Insert {
            /// Table name.
            table: String,
            /// Ids to add (at most `MAX_IDS`).
            ids: Vec<Key>,
        } = 0x050B as Request,
        /// Request: the keys of a table in ascending order, one page at a time.
        ListIds {
            /// Table name.
            table: String,
            /// Start after this key (none: from the first).
            after: Option<Key>,
            /// Most keys to return (1 to `MAX_IDS`).
            limit: u16,
        } = 0x050C as Request,
        /// Final reply to `ListIds` and `CheckUnknown`.
        IdList {
            /// The ids.
            ids: Vec<Key>,
            /// Whether `ListIds` has more keys after the last one.
            more: bool,
        } = 0x050D as Final,
        /// Request: which of these ids are not keys of the table.
        CheckUnknown {
            /// Table name.
            table: String,
            /// Ids to check (at most `MAX_IDS`).
            ids: Vec<Key>,
        } = 0x050E as Request,
        /// Request (to `stormd`): make a container of chunks already stored in table
        /// `chunks`, in this order; the sizes must add up to `header.size`.
        Containerize {
            /// The header.
            header: ContainerHeader,
            /// Chunk ids in content order.
            chunks: Vec<ChunkId>,
        } = 0x0520 as Request,
        /// Final reply to `Containerize`.
        ContainerCreated(ContainerInfo) = 0x0521 as Final,
        /// Request (to `stormd`): list the containers.
        Containers = 0x0522 as Request,
        /// Final reply to `Containers`.
        ContainerList(Vec<ContainerInfo>) = 0x0523 as Final,
        /// Request (to `stormd`): a container as stored.
        GetContainer(ContainerId) = 0x0524 as Request,
        /// Final reply to `GetContainer` and `Assemble`.
        ContainerData {
            /// Its id.
            id: ContainerId,
            /// The container.
            container: Container,
        } = 0x0525 as Final,
        /// Request (to `stormd`): check every chunk of a container (present, hash, total size)
        /// and answer with the container; a bad chunk is named in an `INVALID_DATA` failure.
        Assemble(ContainerId) = 0x0526 as Request,
        /// Request (to `stormd` on the STORM bus): register the sender as app `app`.
        RegisterApp {
            /// App id.
            app: u16,
            /// App name.
            name: String,
        } = 0x0530 as Request,
        /// Request (to `stormd`): deliver a message to app `app`.
        AppSend {
            /// Destination app id.
            app: u16,
            /// Payload (at most `MAX_APP_PAYLOAD` bytes).
            payload: Vec<u8>,
        } = 0x0531 as Request,
        /// Notification to a registered app (request id of its `RegisterApp`).
        AppMessage {
            /// The app id.
            app: u16,
            /// Who sent it: a local service id or a peer, as text.
            from: String,
            /// Payload.
            payload: Vec<u8>,
        } = 0x0532 as OneWay,
        /// Request (to `stormd`): the registered apps.
        Apps = 0x0533 as Request,
        /// Final reply to `Apps`.
        AppList(Vec<AppInfo>) = 0x0534 as Final,
        /// Request (to `stormd`): send a message to app `app` of a peer's Storm node (its LNP
        /// node's id), as a Storm `Post`; it arrives there as `app_message` from the node id.
        AppSendTo {
            /// The peer's node id.
            node_id: NodeId,
            /// Destination app id.
            app: u16,
            /// Payload (at most `MAX_POST_BODY` bytes).
            payload: Vec<u8>,
        } = 0x0535 as Request,
        /// Request (to `stormd`): send a chat message to the Storm node of a peer (its LNP
        /// node's id), over the LNP node this node joined.
        ChatSend {
            /// The peer's node id.
            node_id: NodeId,
            /// The text.
            text: String,
        } = 0x0540 as Request,
        /// Request (to `stormd`): subscribe the sender to incoming chat messages.
        ChatSubscribe = 0x0541 as Request,
        /// Notification: a chat message arrived.
        ChatIn(ChatEntry) = 0x0542 as OneWay,
        /// Request (to `stormd`): the chat history with a peer, oldest first.
        ChatHistory {
            /// The peer's node id.
            node_id: NodeId,
        } = 0x0543 as Request,
        /// Final reply to `ChatHistory`.
        ChatList(Vec<ChatEntry>) = 0x0544 as Final,
        /// Request (to `stormd`): offer a stored container to a peer's Storm node for app
        /// `app` (a Storm `AnnounceContainer`); the peer may then pull it.
        SendContainer {
            /// The peer's node id.
            node_id: NodeId,
            /// The container.
            container_id: ContainerId,
            /// The Storm app it is meant for.
            app: u16,
        } = 0x0550 as Request,
        /// Request (to `stormd`): accept an offered container and download it.
        AcceptContainer(ContainerId) = 0x0551 as Request,
        /// Request (to `stormd`): the offers, downloads and shared containers.
        Transfers = 0x0552 as Request,
        /// Final reply to `Transfers`.
        TransferList(Vec<TransferInfo>) = 0x0553 as Final,
        /// Request (to `stormd`): subscribe the sender to `transfer_progress` and
        /// `container_received`. It gets a `transfer_progress` for every transfer at once, and
        /// a `container_received` at once if `container` is given and already stored.
        TransferSubscribe(Option<ContainerId>) = 0x0554 as Request,
        /// Notification: the state of a transfer changed.
        TransferProgress(TransferInfo) = 0x0555 as OneWay,
        /// Notification: a container was downloaded, checked and stored (to the API's
        /// subscribers, and to the app it was meant for on the STORM bus).
        ContainerReceived(TransferInfo) = 0x0556 as OneWay,
    }
}

impl StormMsg {
    /// Encodes the body (after the type id and request id).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        let table = |t: &str, out: &mut Vec<u8>| encode_string(t, MAX_TABLE_NAME, out);
        match self {
            StormMsg::Tables | StormMsg::Containers | StormMsg::Apps => Ok(()),
            StormMsg::TableList(list) => {
                encode_len(list.len(), MAX_LIST, out)?;
                for t in list {
                    table(&t.name, out)?;
                    t.count.strict_encode(out)?;
                }
                Ok(())
            }
            StormMsg::Count { table: t } => table(t, out),
            StormMsg::Counted(n) => n.strict_encode(out),
            StormMsg::Put {
                table: t,
                key,
                value,
            } => {
                table(t, out)?;
                key.strict_encode(out)?;
                encode_value(value, MAX_VALUE, out)
            }
            StormMsg::Get { table: t, key } | StormMsg::Delete { table: t, key } => {
                table(t, out)?;
                key.strict_encode(out)
            }
            StormMsg::Value(v) => encode_value(v, MAX_VALUE, out),
            StormMsg::StoreChunk { table: t, data } => {
                table(t, out)?;
                encode_value(data, MAX_VALUE, out)
            }
            StormMsg::ChunkStored(id) => id.strict_encode(out),
            StormMsg::GetContainer(id) | StormMsg::Assemble(id) => id.strict_encode(out),
            StormMsg::RetrieveChunk { table: t, id } => {
                table(t, out)?;
                id.strict_encode(out)
            }
            StormMsg::Insert { table: t, ids } | StormMsg::CheckUnknown { table: t, ids } => {
                table(t, out)?;
                encode_ids(ids, MAX_IDS, out)
            }
            StormMsg::ListIds {
                table: t,
                after,
                limit,
            } => {
                table(t, out)?;
                match after {
                    None => out.push(0),
                    Some(id) => {
                        out.push(1);
                        id.strict_encode(out)?;
                    }
                }
                limit.strict_encode(out)
            }
            StormMsg::IdList { ids, more } => {
                encode_ids(ids, MAX_IDS, out)?;
                more.strict_encode(out)
            }
            StormMsg::Containerize { header, chunks } => {
                header.strict_encode(out)?;
                encode_ids(chunks, MAX_CONTAINER_CHUNKS, out)
            }
            StormMsg::ContainerCreated(c) => c.strict_encode(out),
            StormMsg::ContainerList(list) => {
                encode_len(list.len(), MAX_LIST, out)?;
                list.iter().try_for_each(|c| c.strict_encode(out))
            }
            StormMsg::ContainerData { id, container } => {
                id.strict_encode(out)?;
                container.strict_encode(out)
            }
            StormMsg::RegisterApp { app, name } => {
                app.strict_encode(out)?;
                encode_string(name, MAX_SERVICE_NAME, out)
            }
            StormMsg::AppSend { app, payload } => {
                app.strict_encode(out)?;
                encode_value(payload, MAX_APP_PAYLOAD, out)
            }
            StormMsg::AppMessage { app, from, payload } => {
                app.strict_encode(out)?;
                encode_string(from, MAX_SERVICE_NAME * 2, out)?;
                encode_value(payload, MAX_APP_PAYLOAD, out)
            }
            StormMsg::ChatSend { node_id, text } => {
                node_id.strict_encode(out)?;
                encode_string(text, MAX_TEXT, out)
            }
            StormMsg::ChatSubscribe => Ok(()),
            StormMsg::ChatIn(e) => e.strict_encode(out),
            StormMsg::ChatHistory { node_id } => node_id.strict_encode(out),
            StormMsg::ChatList(list) => {
                encode_len(list.len(), MAX_LIST, out)?;
                list.iter().try_for_each(|e| e.strict_encode(out))
            }
            StormMsg::AppSendTo {
                node_id,
                app,
                payload,
            } => {
                node_id.strict_encode(out)?;
                app.strict_encode(out)?;
                encode_value(payload, MAX_POST_BODY, out)
            }
            StormMsg::SendContainer {
                node_id,
                container_id,
                app,
            } => {
                node_id.strict_encode(out)?;
                container_id.strict_encode(out)?;
                app.strict_encode(out)
            }
            StormMsg::AcceptContainer(id) => id.strict_encode(out),
            StormMsg::Transfers => Ok(()),
            StormMsg::TransferList(list) => {
                encode_len(list.len(), MAX_LIST, out)?;
                list.iter().try_for_each(|t| t.strict_encode(out))
            }
            StormMsg::TransferSubscribe(id) => match id {
                None => 0u8.strict_encode(out),
                Some(id) => {
                    1u8.strict_encode(out)?;
                    id.strict_encode(out)
                }
            },
            StormMsg::TransferProgress(t) | StormMsg::ContainerReceived(t) => t.strict_encode(out),
            StormMsg::AppList(apps) => {
                encode_len(apps.len(), MAX_LIST, out)?;
                for a in apps {
                    a.app.strict_encode(out)?;
                    encode_string(&a.name, MAX_SERVICE_NAME, out)?;
                }
                Ok(())
            }
        }
    }

    /// Decodes the body of type `type_id` (one of [`StormMsg::TYPE_IDS`]).
    pub fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<StormMsg, BodyError> {
        let table = |r: &mut Reader<'_>| decode_string(r, MAX_TABLE_NAME);
        Ok(match type_id {
            0x0500 => StormMsg::Tables,
            0x0501 => {
                let n = r.len_prefix(MAX_LIST, 2 + 8)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(TableInfo {
                        name: table(r)?,
                        count: u64::strict_decode(r)?,
                    });
                }
                StormMsg::TableList(list)
            }
            0x0502 => StormMsg::Count { table: table(r)? },
            0x0503 => StormMsg::Counted(u64::strict_decode(r)?),
            0x0504 => StormMsg::Put {
                table: table(r)?,
                key: Strict::strict_decode(r)?,
                value: decode_value(r, MAX_VALUE)?,
            },
            0x0505 => StormMsg::Get {
                table: table(r)?,
                key: Strict::strict_decode(r)?,
            },
            0x0506 => StormMsg::Value(decode_value(r, MAX_VALUE)?),
            0x0507 => StormMsg::Delete {
                table: table(r)?,
                key: Strict::strict_decode(r)?,
            },
            0x0508 => StormMsg::StoreChunk {
                table: table(r)?,
                data: decode_value(r, MAX_VALUE)?,
            },
            0x0509 => StormMsg::ChunkStored(Strict::strict_decode(r)?),
            0x050A => StormMsg::RetrieveChunk {
                table: table(r)?,
                id: Strict::strict_decode(r)?,
            },
            0x050B => StormMsg::Insert {
                table: table(r)?,
                ids: decode_ids(r, MAX_IDS)?,
            },
            0x050C => StormMsg::ListIds {
                table: table(r)?,
                after: match u8::strict_decode(r)? {
                    0 => None,
                    1 => Some(Strict::strict_decode(r)?),
                    t => return Err(StrictError::WrongOptionalEncoding(t).into()),
                },
                limit: u16::strict_decode(r)?,
            },
            0x050D => StormMsg::IdList {
                ids: decode_ids(r, MAX_IDS)?,
                more: bool::strict_decode(r)?,
            },
            0x050E => StormMsg::CheckUnknown {
                table: table(r)?,
                ids: decode_ids(r, MAX_IDS)?,
            },
            0x0520 => StormMsg::Containerize {
                header: ContainerHeader::strict_decode(r)?,
                chunks: decode_ids(r, MAX_CONTAINER_CHUNKS)?,
            },
            0x0521 => StormMsg::ContainerCreated(ContainerInfo::strict_decode(r)?),
            0x0522 => StormMsg::Containers,
            0x0523 => {
                let n = r.len_prefix(MAX_LIST, ContainerInfo::MIN_SIZE)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(ContainerInfo::strict_decode(r)?);
                }
                StormMsg::ContainerList(list)
            }
            0x0524 => StormMsg::GetContainer(Strict::strict_decode(r)?),
            0x0525 => StormMsg::ContainerData {
                id: Strict::strict_decode(r)?,
                container: Container::strict_decode(r)?,
            },
            0x0526 => StormMsg::Assemble(Strict::strict_decode(r)?),
            0x0530 => StormMsg::RegisterApp {
                app: u16::strict_decode(r)?,
                name: decode_string(r, MAX_SERVICE_NAME)?,
            },
            0x0531 => StormMsg::AppSend {
                app: u16::strict_decode(r)?,
                payload: decode_value(r, MAX_APP_PAYLOAD)?,
            },
            0x0532 => StormMsg::AppMessage {
                app: u16::strict_decode(r)?,
                from: decode_string(r, MAX_SERVICE_NAME * 2)?,
                payload: decode_value(r, MAX_APP_PAYLOAD)?,
            },
            0x0533 => StormMsg::Apps,
            0x0534 => {
                let n = r.len_prefix(MAX_LIST, 4)?;
                let mut apps = Vec::with_capacity(n);
                for _ in 0..n {
                    apps.push(AppInfo {
                        app: u16::strict_decode(r)?,
                        name: decode_string(r, MAX_SERVICE_NAME)?,
                    });
                }
                StormMsg::AppList(apps)
            }
            0x0540 => StormMsg::ChatSend {
                node_id: Strict::strict_decode(r)?,
                text: decode_string(r, MAX_TEXT)?,
            },
            0x0541 => StormMsg::ChatSubscribe,
            0x0542 => StormMsg::ChatIn(ChatEntry::strict_decode(r)?),
            0x0543 => StormMsg::ChatHistory {
                node_id: Strict::strict_decode(r)?,
            },
            0x0544 => {
                let n = r.len_prefix(MAX_LIST, ChatEntry::MIN_SIZE)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(ChatEntry::strict_decode(r)?);
                }
                StormMsg::ChatList(list)
            }
            0x0535 => StormMsg::AppSendTo {
                node_id: Strict::strict_decode(r)?,
                app: u16::strict_decode(r)?,
                payload: decode_value(r, MAX_POST_BODY)?,
            },
            0x0550 => StormMsg::SendContainer {
                node_id: Strict::strict_decode(r)?,
                container_id: Strict::strict_decode(r)?,
                app: u16::strict_decode(r)?,
            },
            0x0551 => StormMsg::AcceptContainer(Strict::strict_decode(r)?),
            0x0552 => StormMsg::Transfers,
            0x0553 => {
                let n = r.len_prefix(MAX_LIST, TransferInfo::MIN_SIZE)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(TransferInfo::strict_decode(r)?);
                }
                StormMsg::TransferList(list)
            }
            0x0554 => StormMsg::TransferSubscribe(match u8::strict_decode(r)? {
                0 => None,
                1 => Some(Strict::strict_decode(r)?),
                t => return Err(StrictError::WrongOptionalEncoding(t).into()),
            }),
            0x0555 => StormMsg::TransferProgress(TransferInfo::strict_decode(r)?),
            0x0556 => StormMsg::ContainerReceived(TransferInfo::strict_decode(r)?),
            other => return Err(BodyError::UnknownType(other)),
        })
    }
}

/// Encodes bytes with a u32 LE length, at most `max`.
fn encode_value(b: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), StrictError> {
    if b.len() > max {
        return Err(StrictError::ExceedMaxItems { len: b.len(), max });
    }
    (b.len() as u32).strict_encode(out)?;
    out.extend_from_slice(b);
    Ok(())
}

/// Decodes bytes with a u32 LE length, checked against `max` and the bytes left first.
fn decode_value(r: &mut Reader<'_>, max: usize) -> Result<Vec<u8>, StrictError> {
    let len = u32::strict_decode(r)? as usize;
    if len > max {
        return Err(StrictError::ExceedMaxItems { len, max });
    }
    Ok(r.take(len)?.to_vec())
}

/// Encodes ids (32 bytes each) with a u16 count, at most `max`.
fn encode_ids<T: Strict>(ids: &[T], max: usize, out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(ids.len(), max, out)?;
    ids.iter().try_for_each(|id| id.strict_encode(out))
}

/// Decodes ids with a u16 count, checked against `max` and the bytes left first.
fn decode_ids<T: Strict>(r: &mut Reader<'_>, max: usize) -> Result<Vec<T>, StrictError> {
    let n = r.len_prefix(max, T::MIN_SIZE)?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(T::strict_decode(r)?);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::testing::roundtrip;
    use crate::wire::api::Msg;

    #[test]
    fn messages_at_their_limits_roundtrip() {
        // Every type id has a sample in wire/api/samples.rs; these are at the limits.
        let header = ContainerHeader {
            version: 0,
            mime: "text/plain".into(),
            info: "greeting".into(),
            size: 5,
        };
        let t = || "chunks".to_string();
        let samples = vec![
            StormMsg::Put {
                table: t(),
                key: [1; 32],
                value: vec![0; MAX_VALUE],
            },
            StormMsg::Value(vec![5; 70_000]),
            StormMsg::ListIds {
                table: t(),
                after: None,
                limit: 1,
            },
            StormMsg::IdList {
                ids: vec![[5; 32]; MAX_IDS],
                more: true,
            },
            StormMsg::CheckUnknown {
                table: t(),
                ids: vec![],
            },
            StormMsg::ContainerData {
                id: ContainerId([7; 32]),
                container: Container {
                    header,
                    chunks: vec![ChunkId([8; 32]); MAX_CONTAINER_CHUNKS],
                },
            },
            StormMsg::AppSend {
                app: 1,
                payload: vec![1; MAX_APP_PAYLOAD],
            },
        ];
        samples.into_iter().map(Msg::from).for_each(roundtrip);
    }

    #[test]
    fn oversized_values_are_refused_before_allocating() {
        // A put whose value length says 4 GiB, with a few bytes behind it.
        let mut body = Vec::new();
        encode_string("t", MAX_TABLE_NAME, &mut body).unwrap();
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(b"abc");
        let e = StormMsg::decode_body(0x0504, &mut Reader::new(&body)).unwrap_err();
        assert!(matches!(
            e,
            BodyError::Strict(StrictError::ExceedMaxItems { .. })
        ));
        // A value of MAX_VALUE + 1 cannot be encoded either.
        let put = StormMsg::Put {
            table: "t".into(),
            key: [0; 32],
            value: vec![0; MAX_VALUE + 1],
        };
        assert!(put.encode_body(&mut Vec::new()).is_err());
        // A short key is a truncation.
        let mut body = Vec::new();
        encode_string("t", MAX_TABLE_NAME, &mut body).unwrap();
        body.extend_from_slice(&[0; 31]);
        assert!(StormMsg::decode_body(0x0505, &mut Reader::new(&body)).is_err());
    }
}
