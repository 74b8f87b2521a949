//! The transaction index of the checked range, on the [`Storage`] interface (a [`RedbStorage`]
//! file, `index-<network>.redb`, in the data dir):
//!
//! | table      | key                      | value                                        |
//! |------------|--------------------------|----------------------------------------------|
//! | `bp.tx`    | txid (internal order)    | height u32 LE, position u32 LE               |
//! | `bp.block` | height u32 BE, 0-padded  | hash (32), time u32 LE, transactions u32 LE  |
//! | `bp.undo`  | height u32 BE, 0-padded  | the block's txids, for the last [`UNDO_DEPTH`] blocks |
//! | `bp.meta`  | `tip`, `from`, `created` | tip height u32 LE + hash; range start; creation time |
//!
//! Each call of [`TxIndex::connect`] commits its blocks and the new tip in one durable
//! transaction: after a kill -9 the index is at the tip of the last commit, each transaction in
//! it exactly once, and the download goes on from the next height. [`TxIndex::disconnect_tip`]
//! undoes the tip block the same way (a reorganisation), from its undo record. A reorganisation
//! deeper than [`UNDO_DEPTH`] blocks is not undone: the index says so and must be rebuilt (delete
//! the file).

use crate::storage::{Storage, StoreError, Write};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Txid};

/// Blocks below the tip whose undo records are kept (Core keeps undo data for every block; a
/// reorganisation deeper than this has not happened on mainnet since 2013's 24-block fork).
pub const UNDO_DEPTH: u32 = 1_000;

const TX: &str = "bp.tx";
const BLOCK: &str = "bp.block";
const UNDO: &str = "bp.undo";
const META: &str = "bp.meta";

fn meta_key(name: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name.as_bytes());
    k
}

fn height_key(h: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&h.to_be_bytes());
    k
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Where a transaction is mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mined {
    /// Height.
    pub height: u32,
    /// Position in the block (0 is the coinbase).
    pub pos: u32,
    /// The block's hash.
    pub hash: BlockHash,
    /// The block's time (header).
    pub time: u32,
}

/// A block as the index records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// Hash.
    pub hash: BlockHash,
    /// Header time.
    pub time: u32,
    /// Number of transactions.
    pub txs: u32,
}

impl BlockRecord {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.hash.to_byte_array().to_vec();
        v.extend_from_slice(&self.time.to_le_bytes());
        v.extend_from_slice(&self.txs.to_le_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<BlockRecord> {
        Some(BlockRecord {
            hash: BlockHash::from_byte_array(b.get(..32)?.try_into().ok()?),
            time: u32_at(b, 32)?,
            txs: u32_at(b, 36)?,
        })
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Failed(format!("the transaction index is damaged: {what}"))
}

/// The index.
pub struct TxIndex {
    store: Box<dyn Storage>,
    /// The first height of the range (`None` until it is known: the tip when the data dir was
    /// created, on a chain still syncing).
    from: Option<u32>,
    /// The last indexed block.
    tip: Option<(u32, BlockHash)>,
    /// When the index was created (unix seconds).
    created: u64,
    /// Transactions indexed (the `bp.tx` table's size).
    txs: u64,
}

impl TxIndex {
    /// Opens the index in `store`; a new one starts at `from` (if known) and records `now` as
    /// its creation time. An existing index keeps its range (`from` is only for a new one).
    pub fn open(
        store: Box<dyn Storage>,
        from: Option<u32>,
        now: u64,
    ) -> Result<TxIndex, StoreError> {
        let read_u32 = |k: &str| -> Result<Option<u32>, StoreError> {
            match store.get(META, &meta_key(k))? {
                None => Ok(None),
                Some(v) => u32_at(&v, 0).map(Some).ok_or_else(|| corrupt(k)),
            }
        };
        let stored_from = read_u32("from")?;
        let mut fresh = false;
        let created = match store.get(META, &meta_key("created"))? {
            Some(v) => u64::from_le_bytes(
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("created"))?,
            ),
            None => {
                let mut writes = vec![Write::Put {
                    table: META.into(),
                    key: meta_key("created"),
                    value: now.to_le_bytes().to_vec(),
                }];
                if let Some(f) = from {
                    writes.push(Write::Put {
                        table: META.into(),
                        key: meta_key("from"),
                        value: f.to_le_bytes().to_vec(),
                    });
                }
                store.apply(&mut writes.iter())?;
                fresh = true;
                now
            }
        };
        let from = if fresh { from } else { stored_from };
        let tip = match store.get(META, &meta_key("tip"))? {
            None => None,
            Some(v) => {
                let h = u32_at(&v, 0).ok_or_else(|| corrupt("tip"))?;
                let hash = v
                    .get(4..36)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("tip"))?;
                Some((h, BlockHash::from_byte_array(hash)))
            }
        };
        let txs = store.count(TX)?;
        Ok(TxIndex {
            store,
            from,
            tip,
            created,
            txs,
        })
    }

    /// The range start, when known.
    pub fn from(&self) -> Option<u32> {
        self.from
    }

    /// When the index was created (unix seconds).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Sets the range start of an index that has none yet (stored before it is used).
    pub fn set_from(&mut self, from: u32) -> Result<(), StoreError> {
        if self.from.is_some() {
            return Ok(());
        }
        self.store
            .put(META, &meta_key("from"), &from.to_le_bytes())?;
        self.from = Some(from);
        Ok(())
    }

    /// The last indexed block.
    pub fn tip(&self) -> Option<(u32, BlockHash)> {
        self.tip
    }

    /// Transactions in the index.
    pub fn len(&self) -> u64 {
        self.txs
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.txs == 0
    }

    /// The next height to index (`None` while the range start is unknown).
    pub fn next(&self) -> Option<u32> {
        match self.tip {
            Some((h, _)) => Some(h + 1),
            None => self.from,
        }
    }

    /// The store (the watches keep their tables in it, committed with the index's).
    pub fn store(&self) -> &dyn Storage {
        self.store.as_ref()
    }

    /// Indexes `blocks`, which follow the tip in order, in one durable commit with `extra`.
    pub fn connect(
        &mut self,
        blocks: &[(u32, &Block)],
        extra: Vec<Write>,
    ) -> Result<(), StoreError> {
        let Some(&(last, last_block)) = blocks.last() else {
            return Ok(());
        };
        let first = self.next().ok_or_else(|| corrupt("no range start"))?;
        let mut writes = extra;
        let mut added = 0u64;
        for (expect, &(height, block)) in (first..).zip(blocks) {
            if height != expect {
                return Err(StoreError::Invalid(format!(
                    "block {height} does not follow the index's tip (next is {expect})"
                )));
            }
            let mut undo = Vec::with_capacity(block.txdata.len() * 32);
            for (pos, tx) in block.txdata.iter().enumerate() {
                let txid = tx.compute_txid().to_byte_array();
                let mut v = height.to_le_bytes().to_vec();
                v.extend_from_slice(&(pos as u32).to_le_bytes());
                writes.push(Write::Put {
                    table: TX.into(),
                    key: txid,
                    value: v,
                });
                undo.extend_from_slice(&txid);
            }
            added += block.txdata.len() as u64;
            let record = BlockRecord {
                hash: block.block_hash(),
                time: block.header.time,
                txs: block.txdata.len() as u32,
            };
            writes.push(Write::Put {
                table: BLOCK.into(),
                key: height_key(height),
                value: record.encode(),
            });
            writes.push(Write::Put {
                table: UNDO.into(),
                key: height_key(height),
                value: undo,
            });
            if let Some(old) = height.checked_sub(UNDO_DEPTH) {
                writes.push(Write::Delete {
                    table: UNDO.into(),
                    key: height_key(old),
                });
            }
        }
        let hash = last_block.block_hash();
        let mut tip = last.to_le_bytes().to_vec();
        tip.extend_from_slice(&hash.to_byte_array());
        writes.push(Write::Put {
            table: META.into(),
            key: meta_key("tip"),
            value: tip,
        });
        self.store.apply(&mut writes.iter())?;
        self.tip = Some((last, hash));
        // Exact even for the two duplicate coinbases of mainnet (BIP30): the count is read back.
        self.txs = if added > 0 {
            self.store.count(TX)?
        } else {
            self.txs
        };
        Ok(())
    }

    /// Undoes the tip block (it left the best chain), with `extra` in the same commit;
    /// returns its txids, in block order.
    pub fn disconnect_tip(&mut self, extra: Vec<Write>) -> Result<Vec<Txid>, StoreError> {
        let Some((height, hash)) = self.tip else {
            return Ok(Vec::new());
        };
        let undo = self.store.get(UNDO, &height_key(height))?.ok_or_else(|| {
            StoreError::Failed(format!(
                "block {height} left the best chain, and the index keeps undo records for the \
                 last {UNDO_DEPTH} blocks only: delete the index file to rebuild it"
            ))
        })?;
        if undo.len() % 32 != 0 {
            return Err(corrupt("undo record"));
        }
        let txids: Vec<Txid> = undo
            .chunks_exact(32)
            .map(|c| Txid::from_byte_array(c.try_into().expect("32 bytes")))
            .collect();
        let mut writes = extra;
        writes.extend(txids.iter().map(|t| Write::Delete {
            table: TX.into(),
            key: t.to_byte_array(),
        }));
        writes.push(Write::Delete {
            table: BLOCK.into(),
            key: height_key(height),
        });
        writes.push(Write::Delete {
            table: UNDO.into(),
            key: height_key(height),
        });
        let below = match height.checked_sub(1) {
            Some(h) if self.from.is_some_and(|f| h >= f) => {
                let r = self.block(h)?.ok_or_else(|| corrupt("block record"))?;
                Some((h, r.hash))
            }
            _ => None,
        };
        writes.push(match below {
            Some((h, hash)) => {
                let mut v = h.to_le_bytes().to_vec();
                v.extend_from_slice(&hash.to_byte_array());
                Write::Put {
                    table: META.into(),
                    key: meta_key("tip"),
                    value: v,
                }
            }
            None => Write::Delete {
                table: META.into(),
                key: meta_key("tip"),
            },
        });
        self.store.apply(&mut writes.iter())?;
        tracing::info!(height, %hash, txs = txids.len(), "block left the index (reorganisation)");
        self.tip = below;
        self.txs = self.store.count(TX)?;
        Ok(txids)
    }

    /// The block record at `height`.
    pub fn block(&self, height: u32) -> Result<Option<BlockRecord>, StoreError> {
        match self.store.get(BLOCK, &height_key(height))? {
            None => Ok(None),
            Some(v) => BlockRecord::decode(&v)
                .map(Some)
                .ok_or_else(|| corrupt("block record")),
        }
    }

    /// Where `txid` is mined, if it is in the index.
    pub fn get(&self, txid: &Txid) -> Result<Option<Mined>, StoreError> {
        let Some(v) = self.store.get(TX, &txid.to_byte_array())? else {
            return Ok(None);
        };
        let height = u32_at(&v, 0).ok_or_else(|| corrupt("tx entry"))?;
        let pos = u32_at(&v, 4).ok_or_else(|| corrupt("tx entry"))?;
        let block = self.block(height)?.ok_or_else(|| corrupt("block record"))?;
        Ok(Some(Mined {
            height,
            pos,
            hash: block.hash,
            time: block.time,
        }))
    }

    /// Blocks in the index.
    pub fn count_blocks(&self) -> Result<u64, StoreError> {
        self.store.count(BLOCK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::{Network, OutPoint};

    fn block_at(height: u32, txs: u32, salt: u32) -> Block {
        let mut b = genesis_block(Network::Regtest);
        let cb = b.txdata[0].clone();
        b.txdata = (0..txs)
            .map(|i| {
                let mut t = cb.clone();
                t.lock_time = bitcoin::absolute::LockTime::from_consensus(height * 1000 + i);
                t.input[0].previous_output = OutPoint {
                    txid: Txid::from_byte_array([(salt & 0xff) as u8; 32]),
                    vout: i,
                };
                t
            })
            .collect();
        b.header.nonce = height ^ (salt << 16);
        b
    }

    fn open(dir: &std::path::Path, from: Option<u32>) -> TxIndex {
        let store = RedbStorage::open(&dir.join("index.redb")).expect("store");
        TxIndex::open(Box::new(store), from, 1_700_000_000).expect("index")
    }

    #[test]
    fn connect_get_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = open(dir.path(), Some(5));
        assert_eq!(ix.next(), Some(5));
        let blocks: Vec<Block> = (5..8).map(|h| block_at(h, 3, 0)).collect();
        let refs: Vec<(u32, &Block)> = (5..8).zip(blocks.iter()).collect();
        ix.connect(&refs, vec![]).expect("connect");
        assert_eq!(ix.len(), 9);
        let t = blocks[1].txdata[2].compute_txid();
        let m = ix.get(&t).expect("get").expect("mined");
        assert_eq!((m.height, m.pos, m.hash), (6, 2, blocks[1].block_hash()));
        drop(ix);
        // The range of an existing index stays; `from` is for a new one only.
        let ix = open(dir.path(), Some(0));
        assert_eq!(ix.from(), Some(5));
        assert_eq!(ix.tip(), Some((7, blocks[2].block_hash())));
        assert_eq!(ix.next(), Some(8));
        assert_eq!(ix.len(), 9);
    }

    #[test]
    fn out_of_order_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = open(dir.path(), Some(0));
        let b = block_at(1, 2, 0);
        assert!(ix.connect(&[(1, &b)], vec![]).is_err());
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.tip(), None);
    }

    #[test]
    fn a_reorganisation_takes_the_old_branch_out_and_the_new_one_in() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = open(dir.path(), Some(0));
        let old: Vec<Block> = (0..4).map(|h| block_at(h, 2, 0)).collect();
        let refs: Vec<(u32, &Block)> = (0..4).zip(old.iter()).collect();
        ix.connect(&refs, vec![]).expect("connect");
        let gone = ix.disconnect_tip(vec![]).expect("undo");
        assert_eq!(gone.len(), 2);
        assert_eq!(ix.disconnect_tip(vec![]).expect("undo").len(), 2);
        assert_eq!(ix.tip(), Some((1, old[1].block_hash())));
        assert!(ix
            .get(&old[3].txdata[0].compute_txid())
            .expect("get")
            .is_none());
        let new: Vec<Block> = (2..5).map(|h| block_at(h, 1, 9)).collect();
        let refs: Vec<(u32, &Block)> = (2..5).zip(new.iter()).collect();
        ix.connect(&refs, vec![]).expect("connect");
        assert_eq!(ix.len(), 2 * 2 + 3);
        let m = ix
            .get(&new[0].txdata[0].compute_txid())
            .expect("get")
            .expect("in");
        assert_eq!((m.height, m.hash), (2, new[0].block_hash()));
        // Down to nothing: the tip goes away with the range's first block.
        for _ in 0..5 {
            ix.disconnect_tip(vec![]).expect("undo");
        }
        assert_eq!(ix.tip(), None);
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.next(), Some(0));
    }

    #[test]
    fn an_unknown_start_is_set_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = open(dir.path(), None);
        assert_eq!(ix.next(), None);
        ix.set_from(100).expect("set");
        ix.set_from(7).expect("no-op");
        drop(ix);
        let ix = open(dir.path(), None);
        assert_eq!(ix.next(), Some(100));
        assert_eq!(ix.created(), 1_700_000_000);
    }
}
