//! The BP requests of `bpd` (an [`Extension`] of the node manager): `peers`, `connect`,
//! `header`, `block`, `tx`, `broadcast`, and `subscribe_blocks` (BLOCKS bus or any other).

use super::state::{BpState, Waiter};
use super::wired::WiredCmd;
use crate::actors::conn::Command;
use crate::actors::manager::Extension;
use crate::bus::Deliver;
use crate::wire::api::bp::{BlockQuery, BpMsg};
use crate::wire::api::{code, ApiError, Msg, ServiceId};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Transaction};
use std::sync::Arc;

/// The extension; its state is shared.
pub struct Bpd {
    state: Arc<BpState>,
}

impl Bpd {
    /// The extension over `state`.
    pub fn new(state: Arc<BpState>) -> Bpd {
        Bpd { state }
    }
}

impl Bpd {
    /// The output paying `sats` to `address`, which must be of the node's network.
    fn pay_to(
        &self,
        address: &str,
        sats: u64,
    ) -> Result<(bitcoin::ScriptBuf, bitcoin::Amount), ApiError> {
        let a: bitcoin::Address<bitcoin::address::NetworkUnchecked> = address
            .parse()
            .map_err(|_| ApiError::new(code::INVALID_ARGUMENT, "not a Bitcoin address"))?;
        let a = a.require_network(self.state.config.network).map_err(|_| {
            ApiError::new(
                code::INVALID_ARGUMENT,
                format!("not an address of {}", self.state.config.network),
            )
        })?;
        if sats == 0 || sats > 21_000_000 * 100_000_000 {
            return Err(ApiError::new(
                code::INVALID_ARGUMENT,
                "an amount of 0 or above 21 million bitcoin",
            ));
        }
        Ok((a.script_pubkey(), bitcoin::Amount::from_sat(sats)))
    }
}

impl Extension for Bpd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = &d;
        let reply = match &env.msg {
            Msg::Bp(BpMsg::BtcPeers) => BpMsg::BtcPeerList(self.state.list()).into(),
            Msg::Bp(BpMsg::BtcConnect { addr }) => {
                self.state
                    .connect(addr.clone(), Some((bus.clone(), env.clone())));
                return None; // wired answers
            }
            Msg::Bp(BpMsg::GetHeader(q)) => match self.state.header(*q) {
                Some(r) => BpMsg::HeaderInfo(r).into(),
                None => Msg::failure(code::NOT_FOUND, "no such header"),
            },
            Msg::Bp(BpMsg::GetBlock(q)) => match self.state.header(*q) {
                Some(r) => {
                    let hash = BlockHash::from_byte_array(r.hash);
                    bus.send(
                        env.reply(Msg::Progress(format!("fetching block {hash} from a peer"))),
                    );
                    let waiter = Waiter::Block(bus.clone(), env.clone());
                    self.state.want_block(hash, r.height, waiter);
                    return None; // wired answers
                }
                None => {
                    let what = match q {
                        BlockQuery::Height(h) => {
                            format!("no block at height {h} on the best chain")
                        }
                        BlockQuery::Hash(_) => "no such block header".to_string(),
                    };
                    Msg::failure(code::NOT_FOUND, what)
                }
            },
            Msg::Bp(BpMsg::Broadcast { tx }) => {
                match bitcoin::consensus::deserialize::<Transaction>(tx) {
                    Ok(tx) => {
                        let txid = tx.compute_txid().to_byte_array();
                        match self.state.add_tx(tx) {
                            Ok(wtxid) => {
                                let w = wtxid.to_byte_array();
                                let n = self.state.to_ready_peers(|| WiredCmd::AnnounceTx(txid, w));
                                BpMsg::Broadcasted {
                                    txid,
                                    peers: u32::try_from(n).unwrap_or(u32::MAX),
                                }
                                .into()
                            }
                            Err(e) => Msg::failure(code::BUSY, e),
                        }
                    }
                    Err(e) => Msg::failure(code::MALFORMED, format!("not a transaction: {e}")),
                }
            }
            Msg::Bp(BpMsg::GetTx { txid }) => {
                let txid = bitcoin::Txid::from_byte_array(*txid);
                // None: answered when a peer sends the block.
                self.state.get_tx(txid, (bus.clone(), env.clone()))?
            }
            Msg::Bp(BpMsg::AddWatch {
                owner,
                id,
                target,
                from_height,
            }) => {
                let (o, i, t) = (owner.clone(), id.clone(), target.clone());
                match self.state.add_watch(o, i, t, *from_height) {
                    Ok(w) => BpMsg::WatchInfo(w).into(),
                    Err(e) => e.into(),
                }
            }
            Msg::Bp(BpMsg::RemoveWatch { owner, id }) => match self.state.remove_watch(owner, id) {
                Ok(true) => Msg::Success(Some(format!("watch {id} removed"))),
                Ok(false) => Msg::failure(code::NOT_FOUND, format!("{owner} has no watch {id}")),
                Err(e) => crate::wire::api::ApiError::from(e).into(),
            },
            Msg::Bp(BpMsg::ListWatches { owner }) => {
                BpMsg::WatchList(self.state.list_watches(owner)).into()
            }
            Msg::Bp(BpMsg::SubscribeWatches {
                owner,
                since,
                filtered,
            }) => {
                match self
                    .state
                    .subscribe_watches(bus, env, owner, *since, *filtered)
                {
                    Ok(()) => return None, // answered, and the replay sent
                    Err(e) => e.into(),
                }
            }
            Msg::Bp(BpMsg::WalletBalance) => {
                BpMsg::WalletBalances(self.state.wallet_balance()).into()
            }
            Msg::Bp(BpMsg::WalletUtxos) => BpMsg::WalletUtxoList(self.state.wallet_utxos()).into(),
            Msg::Bp(BpMsg::WalletHistory) => {
                BpMsg::WalletTxList(self.state.wallet_history()).into()
            }
            Msg::Bp(BpMsg::WalletSend {
                address,
                sats,
                fee_rate,
                dry_run,
            }) => match self.pay_to(address, *sats) {
                Ok(output) => match self.state.wallet_fund(&[output], *fee_rate, *dry_run, true) {
                    Ok(sent) => BpMsg::WalletSent(sent).into(),
                    Err(e) => e.into(),
                },
                Err(e) => e.into(),
            },
            Msg::Bp(BpMsg::WalletFund { outputs, fee_rate }) => {
                let outputs: Vec<_> = outputs
                    .iter()
                    .map(|(s, v)| {
                        (
                            bitcoin::ScriptBuf::from_bytes(s.clone()),
                            bitcoin::Amount::from_sat(*v),
                        )
                    })
                    .collect();
                match self.state.wallet_fund(&outputs, *fee_rate, false, false) {
                    Ok(sent) => BpMsg::WalletSent(sent).into(),
                    Err(e) => e.into(),
                }
            }
            Msg::Bp(BpMsg::GetFees) => BpMsg::FeeRates(self.state.fees()).into(),
            Msg::Bp(BpMsg::SubscribeBlocks) => match self.state.subscribe(bus.clone(), env) {
                Ok(()) => Msg::Success(Some("subscribed to block events".into())),
                Err(e) => Msg::failure(code::BUSY, e),
            },
            _ => return Some(d),
        };
        bus.send(env.reply(reply));
        None
    }

    fn debug_crash(&mut self, service: &str, requested_by: &str) -> Option<Msg> {
        let actor = self.state.find_service(service)?;
        Some(
            match actor.try_send(Command(WiredCmd::Crash(requested_by.to_string()))) {
                Ok(()) => Msg::Success(Some(format!("crash injected into {service}"))),
                Err(_) => Msg::failure(code::BUSY, "the peer's mailbox is full; retry"),
            },
        )
    }

    fn gone(&mut self, service: &ServiceId) {
        self.state.unsubscribe(service);
    }
}
