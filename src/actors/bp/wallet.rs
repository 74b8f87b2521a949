//! The wallet of the signer's two accounts (BIP84 P2WPKH, BIP86 P2TR): one `bdk_wallet`
//! [`Wallet`] per account, on the account's public descriptors (receive `/0/*`, change `/1/*`,
//! a lookahead of 20 on each: the gap limit), fed every block the index takes in. bdk does the
//! descriptor tracking (which outputs are ours, which are spent, balances, coin selection);
//! the node feeds it and keeps what it learns durable.
//!
//! Each block's changes go into the index's commit (`bp.wallet`, below), so the wallet is at
//! the index's tip after any crash: never ahead, never behind. A reorganisation is bdk's: the
//! first block of the new branch connects to the fork, and what the old branch confirmed is
//! no longer counted.
//!
//! | table       | key                                        | value                        |
//! |-------------|--------------------------------------------|------------------------------|
//! | `bp.wallet` | account u8, sequence u64 BE, part u16 BE   | a bdk `ChangeSet` (JSON), in parts of 512 KiB |
//!
//! On open, the change sets of an account are merged in order; beyond 64 of them they are
//! compacted into one.

use crate::signer::AccountKind;
use crate::storage::{Storage, StoreError, Write};
use bdk_wallet::chain::{BlockId, ChainPosition, Merge};
use bdk_wallet::{Balance, ChangeSet, KeychainKind, LocalOutput, Wallet};
use bitcoin::{Block, Network, Txid};
use std::collections::BTreeMap;

const TABLE: &str = "bp.wallet";
/// Bytes of one stored part of a change set (under the store's 1 MiB value limit).
const PART: usize = 512 << 10;
/// Change sets of an account kept apart before they are compacted into one on open.
const COMPACT_AFTER: usize = 64;
/// Addresses derived ahead of the last used one on each chain: the gap limit (BIP44's 20).
pub const GAP_LIMIT: u32 = 20;

fn key(kind: u8, seq: u64, part: u16) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[0] = kind;
    k[1..9].copy_from_slice(&seq.to_be_bytes());
    k[9..11].copy_from_slice(&part.to_be_bytes());
    k
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("the wallet store: {e}"))
}

/// One account's wallet.
pub struct Account {
    /// Its kind.
    pub kind: AccountKind,
    /// The bdk wallet.
    pub wallet: Wallet,
    next_seq: u64,
}

/// An unspent output of ours, for the API.
#[derive(Clone, Debug)]
pub struct Utxo {
    /// Account.
    pub kind: AccountKind,
    /// The output.
    pub output: LocalOutput,
}

/// One transaction of the history.
#[derive(Clone, Debug)]
pub struct HistoryTx {
    /// Account.
    pub kind: AccountKind,
    /// Txid.
    pub txid: Txid,
    /// Received minus sent, in satoshis.
    pub delta: i64,
    /// The fee, when all its inputs are known.
    pub fee: Option<u64>,
    /// Height and block time, if confirmed.
    pub confirmed: Option<(u32, u64)>,
}

/// Both accounts.
pub struct Wallets {
    /// P2WPKH first, then P2TR.
    pub accounts: Vec<Account>,
}

impl Wallets {
    /// Loads (or creates) the wallets of `accounts` (kind, receive and change descriptors) from
    /// `store`; the writes of a new one are returned, for the caller to commit.
    pub fn open(
        store: &dyn Storage,
        accounts: &[(AccountKind, String, String)],
        network: Network,
    ) -> Result<(Wallets, Vec<Write>), StoreError> {
        let mut all = Vec::new();
        let mut writes = Vec::new();
        for (kind, receive, change) in accounts {
            let tag = *kind as u8;
            let sets = load_sets(store, tag)?;
            let next_seq = sets.keys().next_back().map(|s| s + 1).unwrap_or(0);
            let mut merged = ChangeSet::default();
            for set in sets.values() {
                merged.merge(set.clone());
            }
            let wallet = if merged.is_empty() {
                None
            } else {
                Wallet::load()
                    .descriptor(KeychainKind::External, Some(receive.clone()))
                    .descriptor(KeychainKind::Internal, Some(change.clone()))
                    .lookahead(GAP_LIMIT)
                    .check_network(network)
                    .load_wallet_no_persist(merged.clone())
                    .map_err(failed)?
            };
            let mut account = match wallet {
                Some(wallet) => Account {
                    kind: *kind,
                    wallet,
                    next_seq,
                },
                None => Account {
                    kind: *kind,
                    wallet: Wallet::create(receive.clone(), change.clone())
                        .network(network)
                        .lookahead(GAP_LIMIT)
                        .create_wallet_no_persist()
                        .map_err(failed)?,
                    next_seq,
                },
            };
            if sets.len() > COMPACT_AFTER {
                for seq in sets.keys() {
                    writes.extend(delete_set(store, tag, *seq)?);
                }
                account.next_seq = 0;
                writes.extend(account.set_writes(&merged)?);
            }
            writes.extend(account.staged_writes()?);
            all.push(account);
        }
        Ok((Wallets { accounts: all }, writes))
    }

    /// Applies `block` at `height` to both wallets (in memory; [`Wallets::staged_writes`] then
    /// gives what to commit with the block).
    pub fn apply_block(&mut self, height: u32, block: &Block) -> Result<(), String> {
        let Some(below) = height.checked_sub(1) else {
            return Ok(()); // genesis: already every wallet's first checkpoint
        };
        let parent = BlockId {
            height: below,
            hash: block.header.prev_blockhash,
        };
        for a in &mut self.accounts {
            // The block names a checkpoint the wallet has: its parent, which bdk has on the way
            // up and at a fork; or, for the first block of a range that does not start at
            // genesis, the wallet's tip (genesis), bdk then taking the parent in too.
            let tip = a.wallet.latest_checkpoint();
            let connected_to = if tip.height() < below {
                tip.block_id()
            } else {
                parent
            };
            a.wallet
                .apply_block_connected_to(block, height, connected_to)
                .map_err(|e| {
                    format!(
                        "the {} wallet cannot take block {height}: {e}",
                        a.kind.name()
                    )
                })?;
        }
        Ok(())
    }

    /// What the wallets learnt since the last call, as writes.
    pub fn staged_writes(&mut self) -> Result<Vec<Write>, StoreError> {
        let mut w = Vec::new();
        for a in &mut self.accounts {
            w.extend(a.staged_writes()?);
        }
        Ok(w)
    }

    /// Makes sure receive addresses up to `index` of `kind` are tracked (the signer handed it
    /// out); the writes to commit.
    pub fn reveal_to(&mut self, kind: AccountKind, index: u32) -> Result<Vec<Write>, StoreError> {
        let Some(a) = self.accounts.iter_mut().find(|a| a.kind == kind) else {
            return Ok(Vec::new());
        };
        let _ = a
            .wallet
            .reveal_addresses_to(KeychainKind::External, index)
            .count();
        a.staged_writes()
    }

    /// The balance of each account.
    pub fn balances(&self) -> Vec<(AccountKind, Balance)> {
        self.accounts
            .iter()
            .map(|a| (a.kind, a.wallet.balance()))
            .collect()
    }

    /// Every unspent output, by account, then value (largest first).
    pub fn utxos(&self) -> Vec<Utxo> {
        let mut v: Vec<Utxo> = self
            .accounts
            .iter()
            .flat_map(|a| {
                a.wallet.list_unspent().map(|output| Utxo {
                    kind: a.kind,
                    output,
                })
            })
            .collect();
        v.sort_by_key(|u| (u.kind as u8, std::cmp::Reverse(u.output.txout.value)));
        v
    }

    /// Every transaction touching an account, newest first (unconfirmed before confirmed).
    pub fn history(&self) -> Vec<HistoryTx> {
        let mut v = Vec::new();
        for a in &self.accounts {
            for t in a.wallet.transactions() {
                let tx = &t.tx_node.tx;
                let (sent, received) = a.wallet.sent_and_received(tx);
                let confirmed = match t.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => {
                        Some((anchor.block_id.height, anchor.confirmation_time))
                    }
                    ChainPosition::Unconfirmed { .. } => None,
                };
                v.push(HistoryTx {
                    kind: a.kind,
                    txid: t.tx_node.txid,
                    delta: received.to_sat() as i64 - sent.to_sat() as i64,
                    fee: a.wallet.calculate_fee(tx).ok().map(|f| f.to_sat()),
                    confirmed,
                });
            }
        }
        v.sort_by_key(|h| std::cmp::Reverse(h.confirmed.map(|c| c.0).unwrap_or(u32::MAX)));
        v
    }
}

impl Account {
    fn staged_writes(&mut self) -> Result<Vec<Write>, StoreError> {
        match self.wallet.take_staged() {
            Some(set) if !set.is_empty() => self.set_writes(&set),
            _ => Ok(Vec::new()),
        }
    }

    fn set_writes(&mut self, set: &ChangeSet) -> Result<Vec<Write>, StoreError> {
        let json = serde_json::to_vec(set).map_err(failed)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let parts = json.chunks(PART).collect::<Vec<_>>();
        if parts.len() > u16::MAX as usize {
            return Err(failed("a change set too large to keep"));
        }
        Ok(parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| Write::Put {
                table: TABLE.into(),
                key: key(self.kind as u8, seq, i as u16),
                value: p.to_vec(),
            })
            .collect())
    }
}

/// The change sets of account `tag`, by sequence.
fn load_sets(store: &dyn Storage, tag: u8) -> Result<BTreeMap<u64, ChangeSet>, StoreError> {
    let mut after = (tag > 0).then(|| {
        let mut k = [0xffu8; 32];
        k[0] = tag - 1;
        k
    });
    let mut parts: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    'pages: loop {
        let (page, more) = store.list_ids(TABLE, after, 256)?;
        for k in &page {
            if k[0] != tag {
                break 'pages;
            }
            let seq = u64::from_be_bytes(k[1..9].try_into().expect("8 bytes"));
            let v = store
                .get(TABLE, k)?
                .ok_or_else(|| failed("a part is missing"))?;
            parts.entry(seq).or_default().extend_from_slice(&v);
        }
        after = page.last().copied();
        if !more {
            break;
        }
    }
    parts
        .into_iter()
        .map(|(seq, json)| {
            serde_json::from_slice::<ChangeSet>(&json)
                .map(|s| (seq, s))
                .map_err(failed)
        })
        .collect()
}

fn delete_set(store: &dyn Storage, tag: u8, seq: u64) -> Result<Vec<Write>, StoreError> {
    let mut w = Vec::new();
    let mut part = 0u16;
    while store.get(TABLE, &key(tag, seq, part))?.is_some() {
        w.push(Write::Delete {
            table: TABLE.into(),
            key: key(tag, seq, part),
        });
        part += 1;
    }
    Ok(w)
}
