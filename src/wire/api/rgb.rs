//! The RGB Node's messages: the set [`RgbMsg`] (type ids 0x04xx; docs/API.md, "RGB requests").
//!
//! `rgbd` takes them on the API bus and hands the work to a `containerd` worker on the CTL bus
//! with the same message; the worker's replies go back the same way.
//!
//! Contract ids travel as text (`rgb:…`, the form RGB wallets show); the RGB layer parses them.
//! Consignments use a u32 length checked against [`MAX_CONSIGNMENT`] and the bytes left before
//! anything is allocated.

use crate::wire::api::{message_set, BodyError};
use crate::wire::limits::{MAX_CONSIGNMENT, MAX_LIST, MAX_TEXT};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use crate::wire::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};

/// Longest contract id or seal text (`rgb:` and 50 characters of Baid64; a seal is a txid, a
/// colon and a vout). Our own bound, well above both.
pub const MAX_ID_TEXT: usize = 128;

/// The extension app id of RGB contracts on a Storm node's STORM bus (issue "RGB Node").
pub const RGB_STORM_APP: u16 = 0x0010;

message_set! {
    /// The RGB Node's messages (0x04xx; docs/API.md, "RGB requests").
    pub enum RgbMsg: 0x04 {
        /// Request: issue a NIA contract (the whole supply on one seal); for tests and test
        /// networks.
        Issue(NiaIssue) = 0x0400 as Request,
        /// Final reply to `Issue`: the contract id.
        Issued(String) = 0x0401 as Final,
        /// Request: validate a consignment (binary `RGB\0CON…` or ASCII-armored) and import it.
        Import(Vec<u8>) = 0x0402 as Request,
        /// Final reply to `Import`: the contract, valid, with the validator's warnings.
        Imported(Validation) = 0x0403 as Final,
        /// Request: the ids of every contract.
        Contracts = 0x0404 as Request,
        /// Final reply to `Contracts`.
        ContractList(Vec<String>) = 0x0405 as Final,
        /// Request: the state of a contract (by id).
        State(String) = 0x0406 as Request,
        /// Final reply to `State`.
        ContractState(ContractState) = 0x0407 as Final,
        /// Request: the contract consignment of a contract.
        Export {
            /// Contract id.
            contract_id: String,
            /// ASCII armor instead of the binary form.
            armored: bool,
        } = 0x0408 as Request,
        /// Final reply to `Export`: the consignment.
        Exported(Vec<u8>) = 0x0409 as Final,
        /// Request: send a contract to a node through the Storm node this one is attached to.
        SendContract {
            /// The receiving node's id (the LNP node behind its Storm node).
            node_id: NodeId,
            /// Contract id.
            contract_id: String,
        } = 0x040A as Request,
        /// Request: receive `contract_received` notifications with this request id.
        ContractSubscribe = 0x040B as Request,
        /// Notification: a contract came from a peer, and what validation said.
        ContractReceived(Received) = 0x040C as OneWay,
    }
}

/// What issues a NIA contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NiaIssue {
    /// Ticker (1 to 8 letters and digits, a letter first).
    pub ticker: String,
    /// Name (1 to 40 printable ASCII characters).
    pub name: String,
    /// Decimal places, 0 to 18.
    pub precision: u8,
    /// Issued supply, all on `seal`.
    pub supply: u64,
    /// The seal, `txid:vout`.
    pub seal: String,
}

/// A validated contract: its id and the validator's warnings (empty when none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// Contract id.
    pub contract_id: String,
    /// Warnings of the validator.
    pub warnings: Vec<String>,
}

/// The state of a NIA contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractState {
    /// Contract id.
    pub contract_id: String,
    /// Ticker.
    pub ticker: String,
    /// Name.
    pub name: String,
    /// Decimal places.
    pub precision: u8,
    /// Issued supply.
    pub issued: u64,
    /// Allocations: (seal, amount), sorted.
    pub allocations: Vec<(String, u64)>,
}

/// A contract received from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The sending node's id.
    pub from: NodeId,
    /// The Storm container it came in.
    pub container_id: ContainerId,
    /// Whether it was valid (and so imported).
    pub valid: bool,
    /// Contract id (empty when the consignment could not be read).
    pub contract_id: String,
    /// Why it was refused, or the validator's warnings.
    pub reasons: Vec<String>,
}

fn encode_blob(b: &[u8], out: &mut Vec<u8>) -> Result<(), StrictError> {
    if b.len() > MAX_CONSIGNMENT {
        return Err(StrictError::ExceedMaxItems {
            len: b.len(),
            max: MAX_CONSIGNMENT,
        });
    }
    (b.len() as u32).strict_encode(out)?;
    out.extend_from_slice(b);
    Ok(())
}

fn decode_blob(r: &mut Reader<'_>) -> Result<Vec<u8>, StrictError> {
    let len = u32::strict_decode(r)? as usize;
    if len > MAX_CONSIGNMENT {
        return Err(StrictError::ExceedMaxItems {
            len,
            max: MAX_CONSIGNMENT,
        });
    }
    Ok(r.take(len)?.to_vec())
}

fn encode_id(s: &str, out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_string(s, MAX_ID_TEXT, out)
}

fn decode_id(r: &mut Reader<'_>) -> Result<String, StrictError> {
    decode_string(r, MAX_ID_TEXT)
}

fn encode_texts(list: &[String], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(list.len(), MAX_LIST, out)?;
    list.iter()
        .try_for_each(|s| encode_string(s, MAX_TEXT, out))
}

fn decode_texts(r: &mut Reader<'_>, max_each: usize) -> Result<Vec<String>, StrictError> {
    let n = r.len_prefix(MAX_LIST, 2)?;
    let mut list = Vec::with_capacity(n);
    for _ in 0..n {
        list.push(decode_string(r, max_each)?);
    }
    Ok(list)
}

impl RgbMsg {
    /// Encodes the body (after the type id and request id).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            RgbMsg::Issue(i) => {
                encode_string(&i.ticker, MAX_ID_TEXT, out)?;
                encode_string(&i.name, MAX_ID_TEXT, out)?;
                i.precision.strict_encode(out)?;
                i.supply.strict_encode(out)?;
                encode_id(&i.seal, out)
            }
            RgbMsg::Issued(id) | RgbMsg::State(id) => encode_id(id, out),
            RgbMsg::Import(data) | RgbMsg::Exported(data) => encode_blob(data, out),
            RgbMsg::Imported(v) => {
                encode_id(&v.contract_id, out)?;
                encode_texts(&v.warnings, out)
            }
            RgbMsg::Contracts | RgbMsg::ContractSubscribe => Ok(()),
            RgbMsg::ContractList(ids) => {
                encode_len(ids.len(), MAX_LIST, out)?;
                ids.iter().try_for_each(|id| encode_id(id, out))
            }
            RgbMsg::ContractState(s) => {
                encode_id(&s.contract_id, out)?;
                encode_string(&s.ticker, MAX_ID_TEXT, out)?;
                encode_string(&s.name, MAX_ID_TEXT, out)?;
                s.precision.strict_encode(out)?;
                s.issued.strict_encode(out)?;
                encode_len(s.allocations.len(), MAX_LIST, out)?;
                for (seal, amount) in &s.allocations {
                    encode_string(seal, MAX_TEXT, out)?;
                    amount.strict_encode(out)?;
                }
                Ok(())
            }
            RgbMsg::Export {
                contract_id,
                armored,
            } => {
                encode_id(contract_id, out)?;
                armored.strict_encode(out)
            }
            RgbMsg::SendContract {
                node_id,
                contract_id,
            } => {
                node_id.strict_encode(out)?;
                encode_id(contract_id, out)
            }
            RgbMsg::ContractReceived(r) => {
                r.from.strict_encode(out)?;
                r.container_id.strict_encode(out)?;
                r.valid.strict_encode(out)?;
                encode_id(&r.contract_id, out)?;
                encode_texts(&r.reasons, out)
            }
        }
    }

    /// Decodes the body of type `type_id` (one of [`RgbMsg::TYPE_IDS`]).
    pub fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<RgbMsg, BodyError> {
        Ok(match type_id {
            0x0400 => RgbMsg::Issue(NiaIssue {
                ticker: decode_string(r, MAX_ID_TEXT)?,
                name: decode_string(r, MAX_ID_TEXT)?,
                precision: u8::strict_decode(r)?,
                supply: u64::strict_decode(r)?,
                seal: decode_id(r)?,
            }),
            0x0401 => RgbMsg::Issued(decode_id(r)?),
            0x0402 => RgbMsg::Import(decode_blob(r)?),
            0x0403 => RgbMsg::Imported(Validation {
                contract_id: decode_id(r)?,
                warnings: decode_texts(r, MAX_TEXT)?,
            }),
            0x0404 => RgbMsg::Contracts,
            0x0405 => RgbMsg::ContractList(decode_texts(r, MAX_ID_TEXT)?),
            0x0406 => RgbMsg::State(decode_id(r)?),
            0x0407 => {
                let contract_id = decode_id(r)?;
                let ticker = decode_string(r, MAX_ID_TEXT)?;
                let name = decode_string(r, MAX_ID_TEXT)?;
                let precision = u8::strict_decode(r)?;
                let issued = u64::strict_decode(r)?;
                let n = r.len_prefix(MAX_LIST, 2 + 8)?;
                let mut allocations = Vec::with_capacity(n);
                for _ in 0..n {
                    allocations.push((decode_string(r, MAX_TEXT)?, u64::strict_decode(r)?));
                }
                RgbMsg::ContractState(ContractState {
                    contract_id,
                    ticker,
                    name,
                    precision,
                    issued,
                    allocations,
                })
            }
            0x0408 => RgbMsg::Export {
                contract_id: decode_id(r)?,
                armored: bool::strict_decode(r)?,
            },
            0x0409 => RgbMsg::Exported(decode_blob(r)?),
            0x040A => RgbMsg::SendContract {
                node_id: NodeId::strict_decode(r)?,
                contract_id: decode_id(r)?,
            },
            0x040B => RgbMsg::ContractSubscribe,
            0x040C => RgbMsg::ContractReceived(Received {
                from: NodeId::strict_decode(r)?,
                container_id: ContainerId::strict_decode(r)?,
                valid: bool::strict_decode(r)?,
                contract_id: decode_id(r)?,
                reasons: decode_texts(r, MAX_TEXT)?,
            }),
            other => return Err(BodyError::UnknownType(other)),
        })
    }
}
