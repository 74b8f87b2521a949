//! The BP Node's API and BLOCKS-bus messages: the set [`BpMsg`] (type ids 0x03xx, docs/API.md)
//! and their bodies. Hashes
//! travel in internal byte order (as on the Bitcoin wire); tools show them reversed, as block
//! explorers do. Blocks and transactions use a u32 length (they exceed 65,535 bytes), checked
//! against 4,000,000 and the remaining input before anything is allocated.

use crate::wire::api::{message_set, BodyError};
pub use crate::wire::limits::MAX_BLOB;
use crate::wire::limits::{MAX_LIST, MAX_SCRIPT, MAX_SERVICE_NAME, MAX_TEXT};
use crate::wire::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};
use bitcoin::secp256k1::PublicKey;

message_set! {
    /// The BP Node's messages (0x03xx; docs/API.md section 9).
    pub enum BpMsg: 0x03 {
        /// Request: list the Bitcoin peers.
        BtcPeers = 0x0300 as Request,
        /// Final reply to `BtcPeers`.
        BtcPeerList(Vec<BtcPeerInfo>) = 0x0301 as Final,
        /// Request: connect to a Bitcoin peer (`host:port`).
        BtcConnect {
            /// The address.
            addr: String,
        } = 0x0302 as Request,
        /// Request: a header of the best chain (or any known header by hash).
        GetHeader(BlockQuery) = 0x0303 as Request,
        /// Final reply to `GetHeader`.
        HeaderInfo(BlockRef) = 0x0304 as Final,
        /// Request: a block, fetched from a peer.
        GetBlock(BlockQuery) = 0x0305 as Request,
        /// Final reply to `GetBlock`: the serialized block (with witnesses).
        BlockData {
            /// Height on the best chain.
            height: u32,
            /// Hash (internal byte order).
            hash: [u8; 32],
            /// Serialized block.
            raw: Vec<u8>,
        } = 0x0306 as Final,
        /// Request: announce a transaction to the peers.
        Broadcast {
            /// Serialized transaction.
            tx: Vec<u8>,
        } = 0x0307 as Request,
        /// Final reply to `Broadcast` (API version 2): what was announced, to how many peers.
        Broadcasted {
            /// Its txid (internal byte order).
            txid: [u8; 32],
            /// Ready peers it was announced to.
            peers: u32,
        } = 0x0308 as Final,
        /// Request: a transaction by txid, with its status (mined, in our mempool, unknown).
        GetTx {
            /// The txid (internal byte order).
            txid: [u8; 32],
        } = 0x0309 as Request,
        /// Final reply to `GetTx`.
        TxInfo(TxInfo) = 0x030a as Final,
        /// Request: keep a named watch (a script, an outpoint or a txid) for its owner, kept
        /// across restarts.
        AddWatch {
            /// Who it is for (a service's name, a client's chosen name).
            owner: String,
            /// Its name, unique per owner.
            id: String,
            /// What it watches.
            target: WatchTarget,
            /// Watch from this height (within the indexed range; the blocks already indexed
            /// are downloaded again and rescanned); none: from the index's next height.
            from_height: Option<u32>,
        } = 0x0330 as Request,
        /// Final reply to `AddWatch`: the watch and the height it watches from.
        WatchInfo(WatchInfo) = 0x0331 as Final,
        /// Request: forget a watch.
        RemoveWatch {
            /// Owner.
            owner: String,
            /// Id.
            id: String,
        } = 0x0332 as Request,
        /// Request: the watches of an owner.
        ListWatches {
            /// Owner.
            owner: String,
        } = 0x0333 as Request,
        /// Final reply to `ListWatches`.
        WatchList(Vec<WatchInfo>) = 0x0334 as Final,
        /// Request: the events of an owner's watches, from the block after `since` (a block
        /// hash the subscriber saw last; none: from now on).
        SubscribeWatches {
            /// Owner.
            owner: String,
            /// The last block the subscriber saw.
            since: Option<[u8; 32]>,
            /// Also the filtered-block feed: `filtered_block` for every block (after its
            /// events), `block_disconnected` for every block that leaves.
            filtered: bool,
        } = 0x0335 as Request,
        /// Final reply to `SubscribeWatches`: the replay that follows it.
        WatchSynced(WatchSynced) = 0x0336 as Final,
        /// Notification: a watched transaction, or one paying a watched script, is mined.
        TxConfirmed(WatchHit) = 0x0337 as OneWay,
        /// Notification: a watched outpoint (or an output found by a script watch) is spent.
        OutpointSpent(WatchHit) = 0x0338 as OneWay,
        /// Notification: a reorganisation took a reported transaction out of the best chain.
        TxUnconfirmed {
            /// The watch.
            id: String,
            /// The transaction.
            txid: [u8; 32],
            /// Where it was.
            height: u32,
            /// The block that left.
            block: [u8; 32],
        } = 0x0339 as OneWay,
        /// Notification (filtered feed): a block, with only the transactions that touch the
        /// subscriber's watches.
        FilteredBlock(FilteredBlock) = 0x033a as OneWay,
        /// Notification: a relayed unconfirmed transaction touches a watch (live only: not
        /// kept, not replayed).
        TxSeen {
            /// The watch.
            id: String,
            /// The transaction's txid.
            txid: [u8; 32],
            /// The serialized transaction.
            tx: Vec<u8>,
        } = 0x033b as OneWay,
        /// Request: the wallet's balance, per account.
        WalletBalance = 0x0340 as Request,
        /// Final reply to `WalletBalance`.
        WalletBalances(Vec<AccountBalance>) = 0x0341 as Final,
        /// Request: the wallet's unspent outputs.
        WalletUtxos = 0x0342 as Request,
        /// Final reply to `WalletUtxos`.
        WalletUtxoList(Vec<WalletUtxo>) = 0x0343 as Final,
        /// Request: the wallet's transactions.
        WalletHistory = 0x0344 as Request,
        /// Final reply to `WalletHistory`.
        WalletTxList(Vec<WalletTx>) = 0x0345 as Final,
        /// Request: pay `sats` to `address` from the wallet (coin selection, change to our change
        /// chain, signed by the signer), and broadcast it unless `dry_run`.
        WalletSend {
            /// The address (of the node's network).
            address: String,
            /// Satoshis.
            sats: u64,
            /// Fee rate in sat/vB (none: the node's default).
            fee_rate: Option<u64>,
            /// Build and sign only: no broadcast, nothing spent.
            dry_run: bool,
        } = 0x0346 as Request,
        /// Final reply to `WalletSend` and `WalletFund`.
        WalletSent(WalletSent) = 0x0347 as Final,
        /// Request (for another service, e.g. a channel's funding): a transaction paying these
        /// outputs, funded and signed by the wallet and not broadcast; its inputs count as
        /// spent from then on.
        WalletFund {
            /// (output script, satoshis), in order.
            outputs: Vec<(Vec<u8>, u64)>,
            /// Fee rate in sat/vB (none: the node's default).
            fee_rate: Option<u64>,
        } = 0x0348 as Request,
        /// Request: the fee rates the node uses, per confirmation target.
        GetFees = 0x0350 as Request,
        /// Final reply to `GetFees`.
        FeeRates(Vec<FeeRate>) = 0x0351 as Final,
        /// Request (to `signd`): the signer's master fingerprint and accounts.
        SignerInfo = 0x0320 as Request,
        /// Final reply to `SignerInfo`.
        SignerAccounts {
            /// The master key's fingerprint (what PSBT key origins name).
            fingerprint: [u8; 4],
            /// P2WPKH (BIP84) and P2TR (BIP86).
            accounts: Vec<AccountInfo>,
        } = 0x0321 as Final,
        /// Request (to `signd`): a receive address (the next unused one, or the one at `index`).
        GetAddress {
            /// BIP86 (P2TR) instead of BIP84 (P2WPKH).
            taproot: bool,
            /// A given index (below 2^31) instead of the next unused one.
            index: Option<u32>,
        } = 0x0322 as Request,
        /// Final reply to `GetAddress`.
        AddressInfo(AddressInfo) = 0x0323 as Final,
        /// Request (to `signd`): sign a PSBT (BIP174), and finalize it if asked.
        SignPsbt {
            /// The PSBT, binary.
            psbt: Vec<u8>,
            /// Finalize the inputs and return the transaction if every input is final.
            finalize: bool,
        } = 0x0324 as Request,
        /// Final reply to `SignPsbt`.
        PsbtSigned(PsbtSigned) = 0x0325 as Final,
        /// Request: subscribe the sender to block notifications.
        SubscribeBlocks = 0x0310 as Request,
        /// Notification: a block joined the best chain.
        BlockConnected(BlockRef) = 0x0311 as OneWay,
        /// Notification: a block left the best chain (reorganisation).
        BlockDisconnected(BlockRef) = 0x0312 as OneWay,
    }
}

impl BpMsg {
    /// Encodes the body (after the type id and request id).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            BpMsg::BtcPeers
            | BpMsg::SubscribeBlocks
            | BpMsg::SignerInfo
            | BpMsg::WalletBalance
            | BpMsg::WalletUtxos
            | BpMsg::WalletHistory
            | BpMsg::GetFees => Ok(()),
            BpMsg::FeeRates(v) => encode_list(v, out),
            BpMsg::WalletBalances(v) => encode_list(v, out),
            BpMsg::WalletUtxoList(v) => encode_list(v, out),
            BpMsg::WalletTxList(v) => encode_list(v, out),
            BpMsg::WalletSend {
                address,
                sats,
                fee_rate,
                dry_run,
            } => {
                encode_string(address, MAX_TEXT, out)?;
                sats.strict_encode(out)?;
                fee_rate.strict_encode(out)?;
                dry_run.strict_encode(out)
            }
            BpMsg::WalletSent(w) => w.strict_encode(out),
            BpMsg::WalletFund { outputs, fee_rate } => {
                encode_len(outputs.len(), MAX_OUTPUTS, out)?;
                for (script, sats) in outputs {
                    encode_len(script.len(), MAX_SCRIPT, out)?;
                    out.extend_from_slice(script);
                    sats.strict_encode(out)?;
                }
                fee_rate.strict_encode(out)
            }
            BpMsg::SignerAccounts {
                fingerprint,
                accounts,
            } => {
                fingerprint.strict_encode(out)?;
                encode_len(accounts.len(), MAX_LIST, out)?;
                accounts.iter().try_for_each(|a| a.strict_encode(out))
            }
            BpMsg::GetAddress { taproot, index } => {
                taproot.strict_encode(out)?;
                index.strict_encode(out)
            }
            BpMsg::AddressInfo(a) => a.strict_encode(out),
            BpMsg::SignPsbt { psbt, finalize } => {
                encode_blob(psbt, out)?;
                finalize.strict_encode(out)
            }
            BpMsg::PsbtSigned(s) => s.strict_encode(out),
            BpMsg::BtcPeerList(peers) => {
                encode_len(peers.len(), MAX_LIST, out)?;
                peers.iter().try_for_each(|p| p.strict_encode(out))
            }
            BpMsg::BtcConnect { addr } => encode_string(addr, MAX_TEXT, out),
            BpMsg::GetHeader(q) | BpMsg::GetBlock(q) => q.strict_encode(out),
            BpMsg::HeaderInfo(b) | BpMsg::BlockConnected(b) | BpMsg::BlockDisconnected(b) => {
                b.strict_encode(out)
            }
            BpMsg::BlockData { height, hash, raw } => {
                height.strict_encode(out)?;
                hash.strict_encode(out)?;
                encode_blob(raw, out)
            }
            BpMsg::Broadcast { tx } => encode_blob(tx, out),
            BpMsg::Broadcasted { txid, peers } => {
                txid.strict_encode(out)?;
                peers.strict_encode(out)
            }
            BpMsg::GetTx { txid } => txid.strict_encode(out),
            BpMsg::TxInfo(t) => t.strict_encode(out),
            BpMsg::AddWatch {
                owner,
                id,
                target,
                from_height,
            } => {
                encode_string(owner, MAX_SERVICE_NAME, out)?;
                encode_string(id, MAX_SERVICE_NAME, out)?;
                target.strict_encode(out)?;
                from_height.strict_encode(out)
            }
            BpMsg::WatchInfo(w) => w.strict_encode(out),
            BpMsg::RemoveWatch { owner, id } => {
                encode_string(owner, MAX_SERVICE_NAME, out)?;
                encode_string(id, MAX_SERVICE_NAME, out)
            }
            BpMsg::ListWatches { owner } => encode_string(owner, MAX_SERVICE_NAME, out),
            BpMsg::WatchList(list) => {
                encode_len(list.len(), MAX_LIST, out)?;
                list.iter().try_for_each(|w| w.strict_encode(out))
            }
            BpMsg::SubscribeWatches {
                owner,
                since,
                filtered,
            } => {
                encode_string(owner, MAX_SERVICE_NAME, out)?;
                since.strict_encode(out)?;
                filtered.strict_encode(out)
            }
            BpMsg::FilteredBlock(f) => f.strict_encode(out),
            BpMsg::TxSeen { id, txid, tx } => {
                encode_string(id, MAX_SERVICE_NAME, out)?;
                txid.strict_encode(out)?;
                encode_blob(tx, out)
            }
            BpMsg::WatchSynced(w) => w.strict_encode(out),
            BpMsg::TxConfirmed(h) | BpMsg::OutpointSpent(h) => h.strict_encode(out),
            BpMsg::TxUnconfirmed {
                id,
                txid,
                height,
                block,
            } => {
                encode_string(id, MAX_SERVICE_NAME, out)?;
                txid.strict_encode(out)?;
                height.strict_encode(out)?;
                block.strict_encode(out)
            }
        }
    }

    /// Decodes the body of type `type_id` (one of [`BpMsg::TYPE_IDS`]).
    pub fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<BpMsg, BodyError> {
        Ok(match type_id {
            0x0300 => BpMsg::BtcPeers,
            0x0301 => {
                let n = r.len_prefix(MAX_LIST, BtcPeerInfo::MIN_SIZE)?;
                let mut peers = Vec::with_capacity(n);
                for _ in 0..n {
                    peers.push(BtcPeerInfo::strict_decode(r)?);
                }
                BpMsg::BtcPeerList(peers)
            }
            0x0302 => BpMsg::BtcConnect {
                addr: decode_string(r, MAX_TEXT)?,
            },
            0x0303 => BpMsg::GetHeader(BlockQuery::strict_decode(r)?),
            0x0304 => BpMsg::HeaderInfo(BlockRef::strict_decode(r)?),
            0x0305 => BpMsg::GetBlock(BlockQuery::strict_decode(r)?),
            0x0306 => BpMsg::BlockData {
                height: u32::strict_decode(r)?,
                hash: r.array()?,
                raw: decode_blob(r)?,
            },
            0x0307 => BpMsg::Broadcast {
                tx: decode_blob(r)?,
            },
            0x0308 => BpMsg::Broadcasted {
                txid: r.array()?,
                peers: u32::strict_decode(r)?,
            },
            0x0309 => BpMsg::GetTx { txid: r.array()? },
            0x030a => BpMsg::TxInfo(TxInfo::strict_decode(r)?),
            0x0330 => BpMsg::AddWatch {
                owner: decode_string(r, MAX_SERVICE_NAME)?,
                id: decode_string(r, MAX_SERVICE_NAME)?,
                target: WatchTarget::strict_decode(r)?,
                from_height: Option::<u32>::strict_decode(r)?,
            },
            0x0331 => BpMsg::WatchInfo(WatchInfo::strict_decode(r)?),
            0x0332 => BpMsg::RemoveWatch {
                owner: decode_string(r, MAX_SERVICE_NAME)?,
                id: decode_string(r, MAX_SERVICE_NAME)?,
            },
            0x0333 => BpMsg::ListWatches {
                owner: decode_string(r, MAX_SERVICE_NAME)?,
            },
            0x0334 => {
                let n = r.len_prefix(MAX_LIST, WatchInfo::MIN_SIZE)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(WatchInfo::strict_decode(r)?);
                }
                BpMsg::WatchList(v)
            }
            0x0335 => BpMsg::SubscribeWatches {
                owner: decode_string(r, MAX_SERVICE_NAME)?,
                since: Option::<[u8; 32]>::strict_decode(r)?,
                filtered: bool::strict_decode(r)?,
            },
            0x033a => BpMsg::FilteredBlock(FilteredBlock::strict_decode(r)?),
            0x033b => BpMsg::TxSeen {
                id: decode_string(r, MAX_SERVICE_NAME)?,
                txid: r.array()?,
                tx: decode_blob(r)?,
            },
            0x0336 => BpMsg::WatchSynced(WatchSynced::strict_decode(r)?),
            0x0337 => BpMsg::TxConfirmed(WatchHit::strict_decode(r)?),
            0x0338 => BpMsg::OutpointSpent(WatchHit::strict_decode(r)?),
            0x0339 => BpMsg::TxUnconfirmed {
                id: decode_string(r, MAX_SERVICE_NAME)?,
                txid: r.array()?,
                height: u32::strict_decode(r)?,
                block: r.array()?,
            },
            0x0340 => BpMsg::WalletBalance,
            0x0341 => BpMsg::WalletBalances(decode_list(r)?),
            0x0342 => BpMsg::WalletUtxos,
            0x0343 => BpMsg::WalletUtxoList(decode_list(r)?),
            0x0344 => BpMsg::WalletHistory,
            0x0345 => BpMsg::WalletTxList(decode_list(r)?),
            0x0346 => BpMsg::WalletSend {
                address: decode_string(r, MAX_TEXT)?,
                sats: u64::strict_decode(r)?,
                fee_rate: Option::<u64>::strict_decode(r)?,
                dry_run: bool::strict_decode(r)?,
            },
            0x0347 => BpMsg::WalletSent(WalletSent::strict_decode(r)?),
            0x0348 => {
                let n = r.len_prefix(MAX_OUTPUTS, 2 + 8)?;
                let mut outputs = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = r.len_prefix(MAX_SCRIPT, 1)?;
                    let script = r.take(len)?.to_vec();
                    outputs.push((script, u64::strict_decode(r)?));
                }
                BpMsg::WalletFund {
                    outputs,
                    fee_rate: Option::<u64>::strict_decode(r)?,
                }
            }
            0x0350 => BpMsg::GetFees,
            0x0351 => BpMsg::FeeRates(decode_list(r)?),
            0x0320 => BpMsg::SignerInfo,
            0x0321 => BpMsg::SignerAccounts {
                fingerprint: r.array()?,
                accounts: {
                    let n = r.len_prefix(MAX_LIST, AccountInfo::MIN_SIZE)?;
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(AccountInfo::strict_decode(r)?);
                    }
                    v
                },
            },
            0x0322 => BpMsg::GetAddress {
                taproot: bool::strict_decode(r)?,
                index: Option::<u32>::strict_decode(r)?,
            },
            0x0323 => BpMsg::AddressInfo(AddressInfo::strict_decode(r)?),
            0x0324 => BpMsg::SignPsbt {
                psbt: decode_blob(r)?,
                finalize: bool::strict_decode(r)?,
            },
            0x0325 => BpMsg::PsbtSigned(PsbtSigned::strict_decode(r)?),
            0x0310 => BpMsg::SubscribeBlocks,
            0x0311 => BpMsg::BlockConnected(BlockRef::strict_decode(r)?),
            0x0312 => BpMsg::BlockDisconnected(BlockRef::strict_decode(r)?),
            other => return Err(BodyError::UnknownType(other)),
        })
    }
}

fn encode_list<T: Strict>(v: &[T], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(v.len(), MAX_LIST, out)?;
    v.iter().try_for_each(|x| x.strict_encode(out))
}

fn decode_list<T: Strict>(r: &mut Reader<'_>) -> Result<Vec<T>, StrictError> {
    let n = r.len_prefix(MAX_LIST, T::MIN_SIZE)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(T::strict_decode(r)?);
    }
    Ok(v)
}

/// Encodes bytes with a u32 LE length.
pub fn encode_blob(b: &[u8], out: &mut Vec<u8>) -> Result<(), StrictError> {
    if b.len() > MAX_BLOB {
        return Err(StrictError::ExceedMaxItems {
            len: b.len(),
            max: MAX_BLOB,
        });
    }
    (b.len() as u32).strict_encode(out)?;
    out.extend_from_slice(b);
    Ok(())
}

/// Decodes bytes with a u32 LE length.
pub fn decode_blob(r: &mut Reader<'_>) -> Result<Vec<u8>, StrictError> {
    let len = u32::strict_decode(r)? as usize;
    if len > MAX_BLOB {
        return Err(StrictError::ExceedMaxItems { len, max: MAX_BLOB });
    }
    Ok(r.take(len)?.to_vec())
}

/// Which block: by height on the best chain, or by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockQuery {
    /// Tag 0.
    Height(u32),
    /// Tag 1 (internal byte order).
    Hash([u8; 32]),
}

impl Strict for BlockQuery {
    const MIN_SIZE: usize = 5;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            BlockQuery::Height(h) => {
                out.push(0);
                h.strict_encode(out)
            }
            BlockQuery::Hash(h) => {
                out.push(1);
                h.strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(BlockQuery::Height(u32::strict_decode(r)?)),
            1 => Ok(BlockQuery::Hash(r.array()?)),
            tag => Err(StrictError::UnknownTag {
                ty: "block query",
                tag,
            }),
        }
    }
}

/// A block header with its place: `header_info`, `block_connected`, `block_disconnected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// Height.
    pub height: u32,
    /// Hash (internal byte order).
    pub hash: [u8; 32],
    /// The 80-byte header.
    pub header: [u8; 80],
}

impl Strict for BlockRef {
    const MIN_SIZE: usize = 4 + 32 + 80;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.height.strict_encode(out)?;
        self.hash.strict_encode(out)?;
        self.header.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(BlockRef {
            height: u32::strict_decode(r)?,
            hash: r.array()?,
            header: r.array()?,
        })
    }
}

/// Where a transaction stands (`tx_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Tag 0: in a block of the best chain, within the indexed range.
    Mined {
        /// Height.
        height: u32,
        /// The block's hash (internal byte order).
        hash: [u8; 32],
        /// The block's header time.
        time: u32,
        /// Position in the block (0: the coinbase).
        pos: u32,
        /// Blocks from it to the tip, itself included (1: in the tip).
        confirmations: u32,
    },
    /// Tag 1: in our mempool (not in a block of the indexed range).
    Mempool,
    /// Tag 2: not known. `indexed` is the indexed range (first, last height), if any: a
    /// transaction mined outside it is not known either.
    Unknown {
        /// The indexed heights, first and last.
        indexed: Option<(u32, u32)>,
    },
}

/// A transaction and its status (`tx_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxInfo {
    /// The txid (internal byte order).
    pub txid: [u8; 32],
    /// Its status.
    pub status: TxStatus,
    /// The serialized transaction (with witnesses) when known: mined, or in our mempool.
    pub tx: Option<Vec<u8>>,
}

impl Strict for TxStatus {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            TxStatus::Mined {
                height,
                hash,
                time,
                pos,
                confirmations,
            } => {
                out.push(0);
                height.strict_encode(out)?;
                hash.strict_encode(out)?;
                time.strict_encode(out)?;
                pos.strict_encode(out)?;
                confirmations.strict_encode(out)
            }
            TxStatus::Mempool => {
                out.push(1);
                Ok(())
            }
            TxStatus::Unknown { indexed } => {
                out.push(2);
                indexed.map(|r| r.0).strict_encode(out)?;
                indexed.map(|r| r.1).strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(TxStatus::Mined {
                height: u32::strict_decode(r)?,
                hash: r.array()?,
                time: u32::strict_decode(r)?,
                pos: u32::strict_decode(r)?,
                confirmations: u32::strict_decode(r)?,
            }),
            1 => Ok(TxStatus::Mempool),
            2 => {
                let first = Option::<u32>::strict_decode(r)?;
                let last = Option::<u32>::strict_decode(r)?;
                match (first, last) {
                    (Some(a), Some(b)) if a <= b => Ok(TxStatus::Unknown {
                        indexed: Some((a, b)),
                    }),
                    (None, None) => Ok(TxStatus::Unknown { indexed: None }),
                    _ => Err(StrictError::InvalidValue("an indexed range of one end")),
                }
            }
            tag => Err(StrictError::UnknownTag {
                ty: "tx status",
                tag,
            }),
        }
    }
}

impl Strict for TxInfo {
    const MIN_SIZE: usize = 32 + 1 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.txid.strict_encode(out)?;
        self.status.strict_encode(out)?;
        match &self.tx {
            None => {
                out.push(0);
                Ok(())
            }
            Some(tx) => {
                out.push(1);
                encode_blob(tx, out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(TxInfo {
            txid: r.array()?,
            status: TxStatus::strict_decode(r)?,
            tx: match u8::strict_decode(r)? {
                0 => None,
                1 => Some(decode_blob(r)?),
                tag => return Err(StrictError::UnknownTag { ty: "option", tag }),
            },
        })
    }
}

/// One account's balance (`wallet_balances`), in satoshis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountBalance {
    /// 0: P2WPKH; 1: P2TR.
    pub kind: u8,
    /// Confirmed and spendable.
    pub confirmed: u64,
    /// Unconfirmed change of our own transactions.
    pub trusted_pending: u64,
    /// Unconfirmed, from others.
    pub untrusted_pending: u64,
    /// Coinbase outputs not yet mature.
    pub immature: u64,
}

impl Strict for AccountBalance {
    const MIN_SIZE: usize = 1 + 4 * 8;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.kind.strict_encode(out)?;
        for v in [
            self.confirmed,
            self.trusted_pending,
            self.untrusted_pending,
            self.immature,
        ] {
            v.strict_encode(out)?;
        }
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(AccountBalance {
            kind: u8::strict_decode(r)?,
            confirmed: u64::strict_decode(r)?,
            trusted_pending: u64::strict_decode(r)?,
            untrusted_pending: u64::strict_decode(r)?,
            immature: u64::strict_decode(r)?,
        })
    }
}

/// An unspent output of the wallet (`wallet_utxo_list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletUtxo {
    /// 0: P2WPKH; 1: P2TR.
    pub kind: u8,
    /// The outpoint's txid (internal order).
    pub txid: [u8; 32],
    /// Its vout.
    pub vout: u32,
    /// Satoshis.
    pub value: u64,
    /// The address it pays.
    pub address: String,
    /// 0: receive chain; 1: change chain.
    pub chain: u8,
    /// Index on that chain.
    pub index: u32,
    /// The height it was mined at (none: unconfirmed).
    pub height: Option<u32>,
}

impl Strict for WalletUtxo {
    const MIN_SIZE: usize = 1 + 32 + 4 + 8 + 2 + 1 + 4 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.kind.strict_encode(out)?;
        self.txid.strict_encode(out)?;
        self.vout.strict_encode(out)?;
        self.value.strict_encode(out)?;
        encode_string(&self.address, MAX_TEXT, out)?;
        self.chain.strict_encode(out)?;
        self.index.strict_encode(out)?;
        self.height.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WalletUtxo {
            kind: u8::strict_decode(r)?,
            txid: r.array()?,
            vout: u32::strict_decode(r)?,
            value: u64::strict_decode(r)?,
            address: decode_string(r, MAX_TEXT)?,
            chain: u8::strict_decode(r)?,
            index: u32::strict_decode(r)?,
            height: Option::<u32>::strict_decode(r)?,
        })
    }
}

/// A fee rate for a confirmation target (`fee_rates`), and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRate {
    /// Blocks.
    pub target: u32,
    /// sat/vB.
    pub sat_per_vb: u64,
    /// `config` (`[fees] targets`), or `feefilter of PEER` (raised to a ready peer's BIP133
    /// filter).
    pub source: String,
}

impl Strict for FeeRate {
    const MIN_SIZE: usize = 4 + 8 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.target.strict_encode(out)?;
        self.sat_per_vb.strict_encode(out)?;
        encode_string(&self.source, MAX_TEXT, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(FeeRate {
            target: u32::strict_decode(r)?,
            sat_per_vb: u64::strict_decode(r)?,
            source: decode_string(r, MAX_TEXT)?,
        })
    }
}

/// Most outputs a `wallet_fund` may ask for.
pub const MAX_OUTPUTS: usize = 256;

/// A transaction the wallet made (`wallet_sent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletSent {
    /// Its txid (internal order).
    pub txid: [u8; 32],
    /// The signed transaction.
    pub tx: Vec<u8>,
    /// Its fee, in satoshis.
    pub fee: u64,
    /// The account it spends from (0: P2WPKH; 1: P2TR).
    pub kind: u8,
    /// The ready peers it was announced to (none: not broadcast).
    pub peers: Option<u32>,
}

impl Strict for WalletSent {
    const MIN_SIZE: usize = 32 + 4 + 8 + 1 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.txid.strict_encode(out)?;
        encode_blob(&self.tx, out)?;
        self.fee.strict_encode(out)?;
        self.kind.strict_encode(out)?;
        self.peers.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WalletSent {
            txid: r.array()?,
            tx: decode_blob(r)?,
            fee: u64::strict_decode(r)?,
            kind: u8::strict_decode(r)?,
            peers: Option::<u32>::strict_decode(r)?,
        })
    }
}

/// A transaction of the wallet's history (`wallet_tx_list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletTx {
    /// 0: P2WPKH; 1: P2TR.
    pub kind: u8,
    /// Txid (internal order).
    pub txid: [u8; 32],
    /// What it did to the account's balance, in satoshis (received minus sent).
    pub delta: i64,
    /// Its fee, when all its inputs are known.
    pub fee: Option<u64>,
    /// The height it was mined at (none: unconfirmed).
    pub height: Option<u32>,
    /// The block's time (none: unconfirmed).
    pub time: Option<u64>,
}

impl Strict for WalletTx {
    const MIN_SIZE: usize = 1 + 32 + 8 + 3;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.kind.strict_encode(out)?;
        self.txid.strict_encode(out)?;
        self.delta.strict_encode(out)?;
        self.fee.strict_encode(out)?;
        self.height.strict_encode(out)?;
        self.time.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WalletTx {
            kind: u8::strict_decode(r)?,
            txid: r.array()?,
            delta: i64::strict_decode(r)?,
            fee: Option::<u64>::strict_decode(r)?,
            height: Option::<u32>::strict_decode(r)?,
            time: Option::<u64>::strict_decode(r)?,
        })
    }
}

/// What a watch watches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WatchTarget {
    /// Tag 0: outputs paying this script (and their spends).
    Script(Vec<u8>),
    /// Tag 1: the spend of this outpoint (txid, internal order; vout).
    Outpoint([u8; 32], u32),
    /// Tag 2: this transaction.
    Txid([u8; 32]),
}

impl Strict for WatchTarget {
    const MIN_SIZE: usize = 1 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            WatchTarget::Script(s) => {
                out.push(0);
                encode_len(s.len(), MAX_SCRIPT, out)?;
                out.extend_from_slice(s);
                Ok(())
            }
            WatchTarget::Outpoint(t, v) => {
                out.push(1);
                t.strict_encode(out)?;
                v.strict_encode(out)
            }
            WatchTarget::Txid(t) => {
                out.push(2);
                t.strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => {
                let n = r.len_prefix(MAX_SCRIPT, 1)?;
                Ok(WatchTarget::Script(r.take(n)?.to_vec()))
            }
            1 => Ok(WatchTarget::Outpoint(r.array()?, u32::strict_decode(r)?)),
            2 => Ok(WatchTarget::Txid(r.array()?)),
            tag => Err(StrictError::UnknownTag {
                ty: "watch target",
                tag,
            }),
        }
    }
}

/// A watch (`watch_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchInfo {
    /// Owner.
    pub owner: String,
    /// Id.
    pub id: String,
    /// What it watches.
    pub target: WatchTarget,
    /// The first height it watches (the index's next height when it was added).
    pub from_height: u32,
}

impl Strict for WatchInfo {
    const MIN_SIZE: usize = 2 + 2 + WatchTarget::MIN_SIZE + 4;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_string(&self.owner, MAX_SERVICE_NAME, out)?;
        encode_string(&self.id, MAX_SERVICE_NAME, out)?;
        self.target.strict_encode(out)?;
        self.from_height.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WatchInfo {
            owner: decode_string(r, MAX_SERVICE_NAME)?,
            id: decode_string(r, MAX_SERVICE_NAME)?,
            target: WatchTarget::strict_decode(r)?,
            from_height: u32::strict_decode(r)?,
        })
    }
}

/// What a `subscribe_watches` replays (`watch_synced`): the events of the blocks after the
/// subscriber's last one up to `height`/`hash`, which follow this reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSynced {
    /// Replayed events that follow.
    pub events: u32,
    /// The last block replayed (the subscriber's next `since`).
    pub height: u32,
    /// Its hash.
    pub hash: [u8; 32],
    /// More events are left: subscribe again with `since` = `hash` once these are read (the
    /// subscription is live only when this is 0).
    pub more: bool,
}

impl Strict for WatchSynced {
    const MIN_SIZE: usize = 4 + 4 + 32 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.events.strict_encode(out)?;
        self.height.strict_encode(out)?;
        self.hash.strict_encode(out)?;
        self.more.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WatchSynced {
            events: u32::strict_decode(r)?,
            height: u32::strict_decode(r)?,
            hash: r.array()?,
            more: bool::strict_decode(r)?,
        })
    }
}

/// A block of the filtered feed (`filtered_block`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilteredBlock {
    /// The block.
    pub block: BlockRef,
    /// (position, serialized transaction) of the transactions that touch the subscriber's
    /// watches, in block order.
    pub txs: Vec<(u32, Vec<u8>)>,
}

impl Strict for FilteredBlock {
    const MIN_SIZE: usize = BlockRef::MIN_SIZE + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.block.strict_encode(out)?;
        encode_len(self.txs.len(), MAX_LIST, out)?;
        for (pos, tx) in &self.txs {
            pos.strict_encode(out)?;
            encode_blob(tx, out)?;
        }
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let block = BlockRef::strict_decode(r)?;
        let n = r.len_prefix(MAX_LIST, 4 + 4)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push((u32::strict_decode(r)?, decode_blob(r)?));
        }
        Ok(FilteredBlock { block, txs })
    }
}

/// A watch event (`tx_confirmed`, `outpoint_spent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchHit {
    /// The watch.
    pub id: String,
    /// The transaction.
    pub txid: [u8; 32],
    /// Its height.
    pub height: u32,
    /// Its block.
    pub block: [u8; 32],
    /// Its position in the block.
    pub pos: u32,
    /// Blocks from it to the tip when sent, itself included.
    pub confirmations: u32,
    /// For a script watch, the output paying the script.
    pub vout: Option<u32>,
    /// For a spend: the outpoint spent (txid, vout) and the input spending it.
    pub spent: Option<([u8; 32], u32, u32)>,
    /// The serialized transaction.
    pub tx: Vec<u8>,
}

impl Strict for WatchHit {
    const MIN_SIZE: usize = 2 + 32 + 4 + 32 + 4 + 4 + 1 + 1 + 4;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_string(&self.id, MAX_SERVICE_NAME, out)?;
        self.txid.strict_encode(out)?;
        self.height.strict_encode(out)?;
        self.block.strict_encode(out)?;
        self.pos.strict_encode(out)?;
        self.confirmations.strict_encode(out)?;
        self.vout.strict_encode(out)?;
        match &self.spent {
            None => out.push(0),
            Some((t, v, i)) => {
                out.push(1);
                t.strict_encode(out)?;
                v.strict_encode(out)?;
                i.strict_encode(out)?;
            }
        }
        encode_blob(&self.tx, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(WatchHit {
            id: decode_string(r, MAX_SERVICE_NAME)?,
            txid: r.array()?,
            height: u32::strict_decode(r)?,
            block: r.array()?,
            pos: u32::strict_decode(r)?,
            confirmations: u32::strict_decode(r)?,
            vout: Option::<u32>::strict_decode(r)?,
            spent: match u8::strict_decode(r)? {
                0 => None,
                1 => Some((r.array()?, u32::strict_decode(r)?, u32::strict_decode(r)?)),
                tag => return Err(StrictError::UnknownTag { ty: "option", tag }),
            },
            tx: decode_blob(r)?,
        })
    }
}

/// One Bitcoin peer, as listed by `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtcPeerInfo {
    /// `host:port`.
    pub addr: String,
    /// 0 inbound, 1 outbound.
    pub outbound: bool,
    /// Its user agent.
    pub user_agent: String,
    /// Its protocol version.
    pub version: u32,
    /// The height it announced in `version` (negative announced as 0).
    pub start_height: u32,
    /// Round trip of the last answered ping, microseconds.
    pub ping_rtt_us: Option<u64>,
}

impl Strict for BtcPeerInfo {
    const MIN_SIZE: usize = 2 + 1 + 2 + 4 + 4 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_string(&self.addr, MAX_TEXT, out)?;
        self.outbound.strict_encode(out)?;
        encode_string(&self.user_agent, MAX_TEXT, out)?;
        self.version.strict_encode(out)?;
        self.start_height.strict_encode(out)?;
        self.ping_rtt_us.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(BtcPeerInfo {
            addr: decode_string(r, MAX_TEXT)?,
            outbound: bool::strict_decode(r)?,
            user_agent: decode_string(r, MAX_TEXT)?,
            version: u32::strict_decode(r)?,
            start_height: u32::strict_decode(r)?,
            ping_rtt_us: Option::<u64>::strict_decode(r)?,
        })
    }
}

/// One account of the signer, as `signer_accounts` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// 0: P2WPKH (BIP84); 1: P2TR (BIP86).
    pub kind: u8,
    /// `m/84'/1'/0'`.
    pub path: String,
    /// The account's extended public key (xpub or tpub).
    pub xpub: String,
    /// Output descriptor of the receive chain, with checksum.
    pub receive: String,
    /// Output descriptor of the change chain, with checksum.
    pub change: String,
}

impl Strict for AccountInfo {
    const MIN_SIZE: usize = 1 + 2 * 4;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.kind.strict_encode(out)?;
        for s in [&self.path, &self.xpub, &self.receive, &self.change] {
            encode_string(s, MAX_TEXT, out)?;
        }
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(AccountInfo {
            kind: u8::strict_decode(r)?,
            path: decode_string(r, MAX_TEXT)?,
            xpub: decode_string(r, MAX_TEXT)?,
            receive: decode_string(r, MAX_TEXT)?,
            change: decode_string(r, MAX_TEXT)?,
        })
    }
}

/// An address of the signer (`address_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    /// The address, for the node's network.
    pub address: String,
    /// 0: P2WPKH; 1: P2TR.
    pub kind: u8,
    /// Index on the receive chain.
    pub index: u32,
    /// Full derivation path (`m/84'/1'/0'/0/7`).
    pub path: String,
    /// The output script.
    pub script: Vec<u8>,
    /// The compressed public key at that path (for P2TR, the internal key is its x).
    pub pubkey: PublicKey,
}

impl Strict for AddressInfo {
    const MIN_SIZE: usize = 2 + 1 + 4 + 2 + 2 + 33;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_string(&self.address, MAX_TEXT, out)?;
        self.kind.strict_encode(out)?;
        self.index.strict_encode(out)?;
        encode_string(&self.path, MAX_TEXT, out)?;
        encode_len(self.script.len(), MAX_TEXT, out)?;
        out.extend_from_slice(&self.script);
        out.extend_from_slice(&self.pubkey.serialize());
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let address = decode_string(r, MAX_TEXT)?;
        let kind = u8::strict_decode(r)?;
        let index = u32::strict_decode(r)?;
        let path = decode_string(r, MAX_TEXT)?;
        let n = r.len_prefix(MAX_TEXT, 1)?;
        let script = r.take(n)?.to_vec();
        Ok(AddressInfo {
            address,
            kind,
            index,
            path,
            script,
            pubkey: PublicKey::from_slice(r.take(33)?)
                .map_err(|_| StrictError::InvalidValue("not a public key"))?,
        })
    }
}

/// What `sign_psbt` did (`psbt_signed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsbtSigned {
    /// Input indexes the signer signed.
    pub signed: Vec<u32>,
    /// Inputs minus outputs, in satoshis.
    pub fee: u64,
    /// Whether `data` is the final transaction (else the PSBT).
    pub finalized: bool,
    /// The signed PSBT (binary), or the raw transaction if `finalized`.
    pub data: Vec<u8>,
    /// When finalizing was asked: the inputs that are not final.
    pub not_final: Vec<u32>,
}

fn encode_indexes(v: &[u32], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(v.len(), u16::MAX as usize, out)?;
    v.iter().try_for_each(|i| i.strict_encode(out))
}

fn decode_indexes(r: &mut Reader<'_>) -> Result<Vec<u32>, StrictError> {
    let n = r.len_prefix(u16::MAX as usize, 4)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(u32::strict_decode(r)?);
    }
    Ok(v)
}

impl Strict for PsbtSigned {
    const MIN_SIZE: usize = 2 + 8 + 1 + 4 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_indexes(&self.signed, out)?;
        self.fee.strict_encode(out)?;
        self.finalized.strict_encode(out)?;
        encode_blob(&self.data, out)?;
        encode_indexes(&self.not_final, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(PsbtSigned {
            signed: decode_indexes(r)?,
            fee: u64::strict_decode(r)?,
            finalized: bool::strict_decode(r)?,
            data: decode_blob(r)?,
            not_final: decode_indexes(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::testing::roundtrip;
    use crate::wire::api::Msg;

    #[test]
    fn a_block_above_a_u16_length_roundtrips() {
        // Every type id has a sample in wire/api/samples.rs; this one is above 65,535 bytes.
        roundtrip(Msg::Bp(BpMsg::BlockData {
            height: 5,
            hash: [1; 32],
            raw: vec![0; 70_000],
        }));
    }

    #[test]
    fn every_tx_status_round_trips_and_a_half_range_is_refused() {
        for status in [
            TxStatus::Mempool,
            TxStatus::Unknown { indexed: None },
            TxStatus::Unknown {
                indexed: Some((0, 9)),
            },
        ] {
            roundtrip(Msg::Bp(BpMsg::TxInfo(TxInfo {
                txid: [5; 32],
                status,
                tx: None,
            })));
        }
        // unknown with a first height and no last one
        let bytes = [2u8, 1, 0, 0, 0, 0, 0];
        assert!(TxStatus::strict_decode(&mut Reader::new(&bytes)).is_err());
    }

    #[test]
    fn round_trips_and_bounds() {
        let mut out = Vec::new();
        encode_blob(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, [3, 0, 0, 0, 1, 2, 3]);
        assert_eq!(decode_blob(&mut Reader::new(&out)).unwrap(), vec![1, 2, 3]);
        // 4,000,001 declared: refused before allocating; 1,000 declared in 3 bytes: short.
        let big = 4_000_001u32.to_le_bytes();
        assert!(matches!(
            decode_blob(&mut Reader::new(&big)),
            Err(StrictError::ExceedMaxItems { .. })
        ));
        let mut short = 1000u32.to_le_bytes().to_vec();
        short.extend_from_slice(&[0; 3]);
        assert!(decode_blob(&mut Reader::new(&short)).is_err());
        let q = BlockQuery::Hash([9; 32]);
        let bytes = crate::wire::strict::serialize(&q).unwrap();
        assert_eq!(
            crate::wire::strict::deserialize::<BlockQuery>(&bytes).unwrap(),
            q
        );
        let p = BtcPeerInfo {
            addr: "127.0.0.1:18444".into(),
            outbound: true,
            user_agent: "/bcoin:1.0.2/".into(),
            version: 70015,
            start_height: 300,
            ping_rtt_us: None,
        };
        let bytes = crate::wire::strict::serialize(&p).unwrap();
        assert_eq!(
            crate::wire::strict::deserialize::<BtcPeerInfo>(&bytes).unwrap(),
            p
        );
    }
}
