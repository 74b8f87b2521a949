//! The LDK counterparty of the channel tests (tests/channels.rs): a Lightning node built on the
//! `lightning` crate alone (PeerManager over lightning-net-tokio, ChannelManager, ChainMonitor,
//! DefaultRouter on an empty graph), with its own keys, its own one-key wallet (P2WPKH) and its
//! own chain: full blocks of bcoin, relayed by the test. Nothing of the node under test is here.
//!
//! Usage: ldk-peer PORT (listens on 127.0.0.1:PORT). One JSON command per stdin line, one JSON
//! reply line each (`{"ok": …}` or `{"error": …}`); events are lines with an `"event"` key:
//!   {"cmd":"info"}                                  -> node_id, port, script, height, balance_sat
//!   {"cmd":"connect","node_id":HEX,"addr":"h:p"}    -> ok once init is done
//!   {"cmd":"block","hex":RAW,"height":N}            -> ok (fed to the manager, monitor, wallet)
//!   {"cmd":"unblock","height":N,"prev":HASH}        -> ok (the block at N left the chain)
//!   {"cmd":"open","node_id":HEX,"sats":N,"push_msat":N} -> ok {channel_id (temporary)}
//!   {"cmd":"channels"}                              -> list with local_msat / remote_msat
//!   {"cmd":"invoice","msat":N}                      -> ok {bolt11}
//!   {"cmd":"pay","bolt11":S}                        -> ok (then a payment_sent / payment_failed event)
//!   {"cmd":"close","channel_id":HEX,"node_id":HEX,"force":bool} -> ok
//!   {"cmd":"tamper"}                                -> ok: its next commitment_signed carries a
//!                                                      wrong signature (event `tampered`)
//! Events: broadcast {tx}, channel_pending, channel_ready, channel_closed {reason},
//! payment_sent {hash}, payment_failed {hash, reason}, payment_claimed {hash, msat}.

use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::{BestBlock, Filter, Listen, WatchedOutput};
use lightning::events::{Event, EventsProvider, ReplayEvent};
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, ChainParameters, ChannelManager, PaymentId, Retry,
};
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler, PeerManager};
use lightning::ln::types::ChannelId;
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::gossip::NetworkGraph;
use lightning::routing::router::{DefaultRouter, RouteParametersConfig};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::{EntropySource, InMemorySigner, KeysManager, NodeSigner};
use lightning::util::config::UserConfig;
use lightning::util::logger::{Logger, Record};
use lightning::util::persist::KVStoreSync;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncBufReadExt;

fn out(v: Value) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{v}");
    let _ = o.flush();
}

struct Log;
impl Logger for Log {
    fn log(&self, r: Record) {
        if r.level >= lightning::util::logger::Level::Warn {
            eprintln!("ldk-peer {:?}: {}", r.level, r.args);
        }
    }
}

/// Prints what LDK broadcasts (the test relays it to bcoin), or keeps it (`--bench`).
#[derive(Default)]
struct Bcast(Option<Mutex<Vec<Transaction>>>);
impl BroadcasterInterface for Bcast {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        if let Some(kept) = &self.0 {
            kept.lock().unwrap().extend(txs.iter().map(|t| (*t).clone()));
            return;
        }
        for tx in txs {
            out(
                json!({"event": "broadcast", "txid": tx.compute_txid().to_string(), "tx": encode::serialize_hex(*tx)}),
            );
        }
    }
}

struct Fees;
impl FeeEstimator for Fees {
    fn get_est_sat_per_1000_weight(&self, t: ConfirmationTarget) -> u32 {
        match t {
            ConfirmationTarget::MinAllowedAnchorChannelRemoteFee
            | ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee => 253,
            ConfirmationTarget::MaximumFeeEstimate => 50_000,
            // What it accepts as the fee of a cooperative close it does not pay.
            ConfirmationTarget::ChannelCloseMinimum => 253,
            _ => 2_500,
        }
    }
}

struct NoFilter;
impl Filter for NoFilter {
    fn register_tx(&self, _: &bitcoin::Txid, _: &bitcoin::Script) {}
    fn register_output(&self, _: WatchedOutput) {}
}

#[derive(Default)]
struct MemKv(Mutex<HashMap<String, Vec<u8>>>);
impl KVStoreSync for MemKv {
    fn read(&self, p: &str, s: &str, k: &str) -> Result<Vec<u8>, bitcoin::io::Error> {
        self.0
            .lock()
            .unwrap()
            .get(&format!("{p}/{s}/{k}"))
            .cloned()
            .ok_or(bitcoin::io::Error::new(
                bitcoin::io::ErrorKind::NotFound,
                "none",
            ))
    }
    fn write(&self, p: &str, s: &str, k: &str, v: Vec<u8>) -> Result<(), bitcoin::io::Error> {
        self.0.lock().unwrap().insert(format!("{p}/{s}/{k}"), v);
        Ok(())
    }
    fn remove(&self, p: &str, s: &str, k: &str, _: bool) -> Result<(), bitcoin::io::Error> {
        self.0.lock().unwrap().remove(&format!("{p}/{s}/{k}"));
        Ok(())
    }
    fn list(&self, p: &str, s: &str) -> Result<Vec<String>, bitcoin::io::Error> {
        let pre = format!("{p}/{s}/");
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter_map(|k| k.strip_prefix(&pre).map(String::from))
            .collect())
    }
}

/// The ChannelManager as PeerManager's channel handler, with one drill: when `tamper` is set,
/// the next `commitment_signed` it sends carries a wrong signature (a valid signature of
/// another message), which its peer must refuse and fail the channel for (BOLT-2).
struct Tamper {
    cm: Arc<CM>,
    tamper: std::sync::atomic::AtomicBool,
}

macro_rules! delegate {
    ($($name:ident($t:ty)),* $(,)?) => {$(
        fn $name(&self, n: PublicKey, m: $t) {
            self.cm.$name(n, m)
        }
    )*};
}

impl lightning::ln::msgs::BaseMessageHandler for Tamper {
    fn get_and_clear_pending_msg_events(&self) -> Vec<lightning::ln::msgs::MessageSendEvent> {
        let mut evs = self.cm.get_and_clear_pending_msg_events();
        if self.tamper.load(std::sync::atomic::Ordering::Acquire) {
            for e in evs.iter_mut() {
                if let lightning::ln::msgs::MessageSendEvent::UpdateHTLCs { updates, .. } = e {
                    if let Some(cs) = updates.commitment_signed.first_mut() {
                        let secp = Secp256k1::new();
                        let k = SecretKey::from_slice(&[7; 32]).unwrap();
                        cs.signature =
                            secp.sign_ecdsa(&bitcoin::secp256k1::Message::from_digest([9; 32]), &k);
                        self.tamper
                            .store(false, std::sync::atomic::Ordering::Release);
                        out(json!({"event": "tampered", "channel_id": cs.channel_id.to_string()}));
                    }
                }
            }
        }
        evs
    }
    fn peer_disconnected(&self, n: PublicKey) {
        self.cm.peer_disconnected(n)
    }
    fn provided_node_features(&self) -> lightning::types::features::NodeFeatures {
        self.cm.provided_node_features()
    }
    fn provided_init_features(&self, n: PublicKey) -> lightning::types::features::InitFeatures {
        self.cm.provided_init_features(n)
    }
    fn peer_connected(
        &self,
        n: PublicKey,
        m: &lightning::ln::msgs::Init,
        inbound: bool,
    ) -> Result<(), ()> {
        self.cm.peer_connected(n, m, inbound)
    }
}

impl lightning::ln::msgs::ChannelMessageHandler for Tamper {
    delegate! {
        handle_open_channel(&lightning::ln::msgs::OpenChannel),
        handle_open_channel_v2(&lightning::ln::msgs::OpenChannelV2),
        handle_accept_channel(&lightning::ln::msgs::AcceptChannel),
        handle_accept_channel_v2(&lightning::ln::msgs::AcceptChannelV2),
        handle_funding_created(&lightning::ln::msgs::FundingCreated),
        handle_funding_signed(&lightning::ln::msgs::FundingSigned),
        handle_channel_ready(&lightning::ln::msgs::ChannelReady),
        handle_peer_storage(lightning::ln::msgs::PeerStorage),
        handle_peer_storage_retrieval(lightning::ln::msgs::PeerStorageRetrieval),
        handle_shutdown(&lightning::ln::msgs::Shutdown),
        handle_closing_signed(&lightning::ln::msgs::ClosingSigned),
        handle_stfu(&lightning::ln::msgs::Stfu),
        handle_splice_init(&lightning::ln::msgs::SpliceInit),
        handle_splice_ack(&lightning::ln::msgs::SpliceAck),
        handle_splice_locked(&lightning::ln::msgs::SpliceLocked),
        handle_tx_add_input(&lightning::ln::msgs::TxAddInput),
        handle_tx_add_output(&lightning::ln::msgs::TxAddOutput),
        handle_tx_remove_input(&lightning::ln::msgs::TxRemoveInput),
        handle_tx_remove_output(&lightning::ln::msgs::TxRemoveOutput),
        handle_tx_complete(&lightning::ln::msgs::TxComplete),
        handle_tx_signatures(&lightning::ln::msgs::TxSignatures),
        handle_tx_init_rbf(&lightning::ln::msgs::TxInitRbf),
        handle_tx_ack_rbf(&lightning::ln::msgs::TxAckRbf),
        handle_tx_abort(&lightning::ln::msgs::TxAbort),
        handle_update_add_htlc(&lightning::ln::msgs::UpdateAddHTLC),
        handle_update_fulfill_htlc(lightning::ln::msgs::UpdateFulfillHTLC),
        handle_update_fail_htlc(&lightning::ln::msgs::UpdateFailHTLC),
        handle_update_fail_malformed_htlc(&lightning::ln::msgs::UpdateFailMalformedHTLC),
        handle_commitment_signed(&lightning::ln::msgs::CommitmentSigned),
        handle_revoke_and_ack(&lightning::ln::msgs::RevokeAndACK),
        handle_update_fee(&lightning::ln::msgs::UpdateFee),
        handle_announcement_signatures(&lightning::ln::msgs::AnnouncementSignatures),
        handle_channel_reestablish(&lightning::ln::msgs::ChannelReestablish),
        handle_channel_update(&lightning::ln::msgs::ChannelUpdate),
        handle_error(&lightning::ln::msgs::ErrorMessage),
    }
    fn handle_commitment_signed_batch(
        &self,
        n: PublicKey,
        id: ChannelId,
        b: Vec<lightning::ln::msgs::CommitmentSigned>,
    ) {
        self.cm.handle_commitment_signed_batch(n, id, b)
    }
    fn get_chain_hashes(&self) -> Option<Vec<bitcoin::constants::ChainHash>> {
        self.cm.get_chain_hashes()
    }
    fn message_received(&self) {
        self.cm.message_received()
    }
}

type Graph = NetworkGraph<Arc<Log>>;
type Scorer = ProbabilisticScorer<Arc<Graph>, Arc<Log>>;
type RouterT = DefaultRouter<
    Arc<Graph>,
    Arc<Log>,
    Arc<KeysManager>,
    Arc<RwLock<Scorer>>,
    ProbabilisticScoringFeeParameters,
    Scorer,
>;
type Mon = ChainMonitor<
    InMemorySigner,
    Arc<NoFilter>,
    Arc<Bcast>,
    Arc<Fees>,
    Arc<Log>,
    Arc<MemKv>,
    Arc<KeysManager>,
>;
type CM = ChannelManager<
    Arc<Mon>,
    Arc<Bcast>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<Fees>,
    Arc<RouterT>,
    Arc<NullMessageRouter>,
    Arc<Log>,
>;
type PM = PeerManager<
    lightning_net_tokio::SocketDescriptor,
    Arc<Tamper>,
    Arc<IgnoringMessageHandler>,
    Arc<IgnoringMessageHandler>,
    Arc<Log>,
    Arc<IgnoringMessageHandler>,
    Arc<KeysManager>,
    Arc<IgnoringMessageHandler>,
>;

/// The one-key wallet.
struct Wallet {
    key: SecretKey,
    script: ScriptBuf,
    pubkey: bitcoin::PublicKey,
    utxos: HashMap<OutPoint, u64>,
}

impl Wallet {
    fn block(&mut self, b: &Block) {
        for tx in &b.txdata {
            for i in &tx.input {
                self.utxos.remove(&i.previous_output);
            }
            for (v, o) in tx.output.iter().enumerate() {
                if o.script_pubkey == self.script {
                    self.utxos.insert(
                        OutPoint {
                            txid: tx.compute_txid(),
                            vout: v as u32,
                        },
                        o.value.to_sat(),
                    );
                }
            }
        }
    }

    fn fund(
        &mut self,
        script: ScriptBuf,
        sats: u64,
        mature: &dyn Fn(&OutPoint) -> bool,
    ) -> Result<Transaction, String> {
        let fee = 2_000;
        let mut picked = Vec::new();
        let mut sum = 0;
        for (op, v) in self.utxos.iter() {
            if !mature(op) {
                continue;
            }
            picked.push((*op, *v));
            sum += v;
            if sum >= sats + fee {
                break;
            }
        }
        if sum < sats + fee {
            return Err(format!(
                "the wallet has {sum} sat spendable, {} needed",
                sats + fee
            ));
        }
        let mut tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: picked
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: script,
            }],
        };
        if sum - sats - fee > 1_000 {
            tx.output.push(TxOut {
                value: Amount::from_sat(sum - sats - fee),
                script_pubkey: self.script.clone(),
            });
        }
        let secp = Secp256k1::new();
        let mut cache = SighashCache::new(tx.clone());
        for (i, (_, v)) in picked.iter().enumerate() {
            let h = cache
                .p2wpkh_signature_hash(i, &self.script, Amount::from_sat(*v), EcdsaSighashType::All)
                .map_err(|e| e.to_string())?;
            let sig = secp.sign_ecdsa(
                &bitcoin::secp256k1::Message::from_digest(h.to_byte_array()),
                &self.key,
            );
            let sig = bitcoin::ecdsa::Signature {
                signature: sig,
                sighash_type: EcdsaSighashType::All,
            };
            tx.input[i].witness = Witness::p2wpkh(&sig, &self.pubkey.inner);
        }
        for (op, _) in &picked {
            self.utxos.remove(op);
        }
        Ok(tx)
    }
}

struct Node {
    cm: Arc<CM>,
    bcast: Arc<Bcast>,
    /// `--bench`: events are kept here instead of printed.
    quiet: Option<Mutex<Vec<Value>>>,
    tamper: Arc<Tamper>,
    mon: Arc<Mon>,
    pm: Arc<PM>,
    wallet: Mutex<Wallet>,
    /// Heights of the coinbases (maturity) and the chain height.
    coinbase: Mutex<HashMap<bitcoin::Txid, u32>>,
    height: Mutex<u32>,
}

impl Node {
    fn events(&self) {
        let evs = Mutex::new(Vec::new());
        self.cm
            .process_pending_events(&|e: Event| -> Result<(), ReplayEvent> {
                evs.lock().unwrap().push(e);
                Ok(())
            });
        self.mon
            .process_pending_events(&|e: Event| -> Result<(), ReplayEvent> {
                evs.lock().unwrap().push(e);
                Ok(())
            });
        for e in evs.into_inner().unwrap() {
            self.event(e);
        }
        self.cm.process_pending_htlc_forwards();
        self.pm.process_events();
    }

    fn out(&self, v: Value) {
        match &self.quiet {
            Some(kept) => kept.lock().unwrap().push(v),
            None => out(v),
        }
    }

    fn event(&self, e: Event) {
        let out = |v: Value| self.out(v);
        match e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let h = *self.height.lock().unwrap();
                let cb = self.coinbase.lock().unwrap().clone();
                let mature = |op: &OutPoint| cb.get(&op.txid).is_none_or(|ch| h >= ch + 100);
                let r = self.wallet.lock().unwrap().fund(
                    output_script,
                    channel_value_satoshis,
                    &mature,
                );
                match r {
                    Ok(tx) => {
                        if let Err(e) = self.cm.funding_transaction_generated(
                            temporary_channel_id,
                            counterparty_node_id,
                            tx,
                        ) {
                            out(json!({"event": "funding_failed", "reason": format!("{e:?}")}));
                        }
                    }
                    Err(why) => out(json!({"event": "funding_failed", "reason": why})),
                }
            }
            Event::PaymentClaimable { purpose, .. } => {
                if let Some(p) = purpose.preimage() {
                    self.cm.claim_funds(p);
                }
            }
            Event::PaymentClaimed {
                payment_hash,
                amount_msat,
                ..
            } => out(
                json!({"event": "payment_claimed", "hash": hex(&payment_hash.0), "msat": amount_msat}),
            ),
            Event::PaymentSent {
                payment_hash,
                fee_paid_msat,
                ..
            } => out(
                json!({"event": "payment_sent", "hash": hex(&payment_hash.0), "fee_msat": fee_paid_msat}),
            ),
            Event::PaymentFailed {
                payment_hash,
                reason,
                ..
            } => out(json!({"event": "payment_failed",
                "hash": payment_hash.map(|h| hex(&h.0)), "reason": format!("{reason:?}")})),
            Event::ChannelPending { channel_id, .. } => {
                out(json!({"event": "channel_pending", "channel_id": channel_id.to_string()}))
            }
            Event::ChannelReady { channel_id, .. } => {
                out(json!({"event": "channel_ready", "channel_id": channel_id.to_string()}))
            }
            Event::ChannelClosed {
                channel_id, reason, ..
            } => out(
                json!({"event": "channel_closed", "channel_id": channel_id.to_string(), "reason": reason.to_string()}),
            ),
            Event::SpendableOutputs { outputs, .. } => {
                out(json!({"event": "spendable_outputs", "count": outputs.len()}))
            }
            _ => {}
        }
    }

    fn block(&self, b: &Block, height: u32) {
        self.cm.block_connected(b, height);
        self.mon.block_connected(b, height);
        if let Some(cb) = b.txdata.first() {
            self.coinbase
                .lock()
                .unwrap()
                .insert(cb.compute_txid(), height);
        }
        self.wallet.lock().unwrap().block(b);
        *self.height.lock().unwrap() = height;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pk(v: &Value) -> Result<PublicKey, String> {
    PublicKey::from_str(v.as_str().ok_or("node_id")?).map_err(|e| e.to_string())
}

async fn command(node: &Arc<Node>, c: Value) -> Result<Value, String> {
    let cmd = c["cmd"].as_str().ok_or("no cmd")?;
    match cmd {
        "info" => {
            let w = node.wallet.lock().unwrap();
            let h = *node.height.lock().unwrap();
            let cb = node.coinbase.lock().unwrap();
            let spendable: u64 = w
                .utxos
                .iter()
                .filter(|(op, _)| cb.get(&op.txid).is_none_or(|ch| h >= ch + 100))
                .map(|(_, v)| v)
                .sum();
            Ok(
                json!({"node_id": node.cm.get_our_node_id().to_string(), "script": hex(w.script.as_bytes()),
                "height": h, "balance_sat": spendable}),
            )
        }
        "connect" => {
            let id = pk(&c["node_id"])?;
            let addr: std::net::SocketAddr = c["addr"]
                .as_str()
                .ok_or("addr")?
                .parse()
                .map_err(|e| format!("{e}"))?;
            let conn = lightning_net_tokio::connect_outbound(node.pm.clone(), id, addr)
                .await
                .ok_or("cannot connect")?;
            tokio::spawn(conn);
            for _ in 0..100 {
                if node.pm.peer_by_node_id(&id).is_some() {
                    return Ok(json!(true));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err("init did not complete".into())
        }
        "peers" => Ok(json!(node
            .pm
            .list_peers()
            .iter()
            .map(|p| p.counterparty_node_id.to_string())
            .collect::<Vec<_>>())),
        "block" => {
            let raw = c["hex"].as_str().ok_or("hex")?;
            let b: Block = encode::deserialize_hex(raw).map_err(|e| e.to_string())?;
            let h = c["height"].as_u64().ok_or("height")? as u32;
            node.block(&b, h);
            node.events();
            Ok(json!(true))
        }
        "unblock" => {
            let h = c["height"].as_u64().ok_or("height")? as u32;
            let prev = BlockHash::from_str(c["prev"].as_str().ok_or("prev")?)
                .map_err(|e| e.to_string())?;
            let fork = BestBlock::new(prev, h - 1);
            node.cm.blocks_disconnected(fork);
            node.mon.blocks_disconnected(fork);
            *node.height.lock().unwrap() = h - 1;
            Ok(json!(true))
        }
        "open" => {
            let id = pk(&c["node_id"])?;
            let sats = c["sats"].as_u64().ok_or("sats")?;
            let push = c["push_msat"].as_u64().unwrap_or(0);
            let t = node
                .cm
                .create_channel(id, sats, push, 7, None, None)
                .map_err(|e| format!("{e:?}"))?;
            node.events();
            Ok(json!({"channel_id": t.to_string()}))
        }
        "channels" => {
            let v: Vec<Value> = node.cm.list_channels().iter().map(|c| json!({
                "channel_id": c.channel_id.to_string(), "peer": c.counterparty.node_id.to_string(),
                "capacity_sat": c.channel_value_satoshis, "usable": c.is_usable, "ready": c.is_channel_ready,
                "local_msat": c.outbound_capacity_msat + c.unspendable_punishment_reserve.unwrap_or(0) * 1000,
                "remote_msat": c.inbound_capacity_msat + c.counterparty.unspendable_punishment_reserve * 1000,
                "outbound": c.is_outbound, "confirmations": c.confirmations,
            })).collect();
            Ok(json!(v))
        }
        "invoice" => {
            let msat = c["msat"].as_u64();
            let p = Bolt11InvoiceParameters {
                amount_msats: msat,
                ..Default::default()
            };
            let inv = node
                .cm
                .create_bolt11_invoice(p)
                .map_err(|e| format!("{e:?}"))?;
            Ok(json!({"bolt11": inv.to_string(), "hash": hex(inv.payment_hash().as_byte_array())}))
        }
        "tamper" => {
            node.tamper
                .tamper
                .store(true, std::sync::atomic::Ordering::Release);
            Ok(json!(true))
        }
        "pay" => {
            let inv =
                lightning_invoice::Bolt11Invoice::from_str(c["bolt11"].as_str().ok_or("bolt11")?)
                    .map_err(|e| e.to_string())?;
            let id = PaymentId(inv.payment_hash().to_byte_array());
            node.cm
                .pay_for_bolt11_invoice(
                    &inv,
                    id,
                    None,
                    RouteParametersConfig::default(),
                    Retry::Attempts(3),
                )
                .map_err(|e| format!("{e:?}"))?;
            node.events();
            Ok(json!({"hash": hex(inv.payment_hash().as_byte_array())}))
        }
        "close" => {
            let id = pk(&c["node_id"])?;
            let cid = ChannelId(
                <[u8; 32] as bitcoin::hex::FromHex>::from_hex(
                    c["channel_id"].as_str().ok_or("channel_id")?,
                )
                .map_err(|e| e.to_string())?,
            );
            let r = if c["force"].as_bool().unwrap_or(false) {
                node.cm
                    .force_close_broadcasting_latest_txn(&cid, &id, "forced by the test".into())
            } else {
                node.cm.close_channel(&cid, &id)
            };
            r.map_err(|e| format!("{e:?}"))?;
            node.events();
            Ok(json!(true))
        }
        other => Err(format!("unknown command {other}")),
    }
}

/// Handles LDK's events as soon as it has some (its notifier), and its timers every 10 s.
fn drive(n: Arc<Node>) {
    tokio::spawn(async move {
        let mut last_timer = std::time::Instant::now();
        loop {
            let woken = n.cm.get_event_or_persistence_needed_future();
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            n.events();
            if last_timer.elapsed() >= Duration::from_secs(10) {
                last_timer = std::time::Instant::now();
                n.pm.timer_tick_occurred();
                n.cm.timer_tick_occurred();
            }
        }
    });
}

fn make_node(bench: bool) -> Arc<Node> {
    let mut seed = [0u8; 32];
    bitcoin::secp256k1::rand::RngCore::fill_bytes(
        &mut bitcoin::secp256k1::rand::thread_rng(),
        &mut seed,
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let keys = Arc::new(KeysManager::new(
        &seed,
        now.as_secs(),
        now.subsec_nanos(),
        true,
    ));
    let log = Arc::new(Log);
    let bcast = Arc::new(if bench { Bcast(Some(Mutex::new(Vec::new()))) } else { Bcast(None) });
    let kv = Arc::new(MemKv::default());
    let mon = Arc::new(ChainMonitor::new(
        None,
        bcast.clone(),
        log.clone(),
        Arc::new(Fees),
        kv,
        keys.clone(),
        keys.get_peer_storage_key(),
    ));
    let graph = Arc::new(NetworkGraph::new(Network::Regtest, log.clone()));
    let scorer = Arc::new(RwLock::new(ProbabilisticScorer::new(
        ProbabilisticScoringDecayParameters::default(),
        graph.clone(),
        log.clone(),
    )));
    let router = Arc::new(DefaultRouter::new(
        graph,
        log.clone(),
        keys.clone(),
        scorer,
        ProbabilisticScoringFeeParameters::default(),
    ));
    let mut config = UserConfig::default();
    config.channel_handshake_config.minimum_depth = 1;
    config.channel_handshake_limits.max_minimum_depth = 144;
    config.channel_handshake_config.announce_for_forwarding = false;
    config.accept_inbound_channels = true;
    // The regtest genesis as the start: the test feeds every block from height 1.
    let genesis = bitcoin::blockdata::constants::genesis_block(Network::Regtest).block_hash();
    let params = ChainParameters {
        network: Network::Regtest,
        best_block: BestBlock::new(genesis, 0),
    };
    let cm = Arc::new(ChannelManager::new(
        Arc::new(Fees),
        mon.clone(),
        bcast.clone(),
        router,
        Arc::new(NullMessageRouter {}),
        log.clone(),
        keys.clone(),
        keys.clone(),
        keys.clone(),
        config,
        params,
        now.as_secs() as u32,
    ));
    let ign = Arc::new(IgnoringMessageHandler {});
    let tamper = Arc::new(Tamper {
        cm: cm.clone(),
        tamper: false.into(),
    });
    let handler = MessageHandler {
        chan_handler: tamper.clone(),
        route_handler: Arc::clone(&ign),
        onion_message_handler: Arc::clone(&ign),
        custom_message_handler: Arc::clone(&ign),
        send_only_message_handler: Arc::clone(&ign),
    };
    let pm = Arc::new(PM::new(
        handler,
        now.as_secs() as u32,
        &keys.get_secure_random_bytes(),
        log.clone(),
        keys.clone(),
    ));
    let secp = Secp256k1::new();
    let key = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let pubkey = bitcoin::PublicKey::new(PublicKey::from_secret_key(&secp, &key));
    let script = ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash().expect("compressed"));
    Arc::new(Node {
        cm,
        bcast,
        quiet: bench.then(|| Mutex::new(Vec::new())),
        tamper,
        mon,
        pm: pm.clone(),
        wallet: Mutex::new(Wallet {
            key,
            script,
            pubkey,
            utxos: HashMap::new(),
        }),
        coinbase: Mutex::new(HashMap::new()),
        height: Mutex::new(0),
    })
}

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg == "--bench" {
        let n: usize = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(200);
        return bench::run(n).await;
    }
    let port: u16 = arg.parse().expect("usage: ldk-peer PORT | ldk-peer --bench N");
    let node = make_node(false);
    let pm = node.pm.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let lpm = pm.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                let pm = lpm.clone();
                tokio::spawn(async move {
                    lightning_net_tokio::setup_inbound(pm, s.into_std().unwrap()).await;
                });
            }
        }
    });
    drive(node.clone());
    let id = node.cm.get_our_node_id();
    out(json!({"ready": true, "node_id": id.to_string(), "port": port}));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(c) => command(&node, c).await,
            Err(e) => Err(format!("not JSON: {e}")),
        };
        match reply {
            Ok(v) => out(json!({"ok": v})),
            Err(e) => out(json!({"error": e})),
        }
    }
}

/// `--bench N`: the baseline of benches/channels.rs: two LDK nodes in this process, over
/// loopback TCP (lightning-net-tokio, BOLT-8 like any peer), on a chain made here (LDK checks no
/// proof of work); N payments one at a time, then N with 10 in flight. Prints one JSON line.
mod bench {
    use super::*;
    use bitcoin::block::{Header, Version};
    use bitcoin::{CompactTarget, TxMerkleNode};

    fn block(prev: BlockHash, height: u32, txs: Vec<Transaction>) -> Block {
        let coinbase = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![TxIn { previous_output: OutPoint::null(), script_sig: ScriptBuf::from_bytes(height.to_le_bytes().to_vec()), sequence: Sequence::MAX, witness: Witness::new() }],
            output: vec![TxOut { value: Amount::from_sat(0), script_pubkey: ScriptBuf::new() }],
        };
        let mut txdata = vec![coinbase];
        txdata.extend(txs);
        let mut b = Block {
            header: Header { version: Version::TWO, prev_blockhash: prev, merkle_root: TxMerkleNode::all_zeros(), time: 1_700_000_000 + height, bits: CompactTarget::from_consensus(0x207fffff), nonce: 0 },
            txdata,
        };
        b.header.merkle_root = b.compute_merkle_root().unwrap();
        b
    }

    fn taken(n: &Node, kind: &str, hash: &str) -> bool {
        let mut k = n.quiet.as_ref().unwrap().lock().unwrap();
        match k.iter().position(|e| e["event"] == kind && e["hash"] == hash) {
            Some(i) => {
                k.remove(i);
                true
            }
            None => false,
        }
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let t = std::time::Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(60), "bench: timed out waiting for {what}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    pub async fn run(n: usize) {
        let a = make_node(true);
        let b = make_node(true);
        drive(a.clone());
        drive(b.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bpm = b.pm.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let pm = bpm.clone();
                tokio::spawn(async move { lightning_net_tokio::setup_inbound(pm, s.into_std().unwrap()).await });
            }
        });
        let b_id = b.cm.get_our_node_id();
        let conn = lightning_net_tokio::connect_outbound(a.pm.clone(), b_id, addr).await.unwrap();
        tokio::spawn(conn);
        until("init", || a.pm.peer_by_node_id(&b_id).is_some()).await;
        // A's coins: a transaction (not a coinbase) paying its wallet.
        let script = a.wallet.lock().unwrap().script.clone();
        let source = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![TxIn { previous_output: OutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 0 }, script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness: Witness::new() }],
            output: vec![TxOut { value: Amount::from_sat(10_000_000), script_pubkey: script }],
        };
        let genesis = bitcoin::blockdata::constants::genesis_block(Network::Regtest).block_hash();
        let mut tip = (genesis, 0u32);
        let mut mine = |txs: Vec<Transaction>| {
            let blk = block(tip.0, tip.1 + 1, txs);
            tip = (blk.block_hash(), tip.1 + 1);
            for node in [&a, &b] {
                node.block(&blk, tip.1);
                node.events();
            }
        };
        mine(vec![source]);
        a.cm.create_channel(b_id, 5_000_000, 0, 1, None, None).unwrap();
        a.events();
        until("the funding broadcast", || !a.bcast.0.as_ref().unwrap().lock().unwrap().is_empty()).await;
        let funding = a.bcast.0.as_ref().unwrap().lock().unwrap().drain(..).collect();
        mine(funding);
        until("the channel usable", || a.cm.list_usable_channels().len() == 1 && b.cm.list_usable_channels().len() == 1).await;
        let pay = |msat: u64| {
            let inv = b.cm.create_bolt11_invoice(Bolt11InvoiceParameters { amount_msats: Some(msat), ..Default::default() }).unwrap();
            let id = PaymentId(inv.payment_hash().to_byte_array());
            a.cm.pay_for_bolt11_invoice(&inv, id, None, RouteParametersConfig::default(), Retry::Attempts(3)).unwrap();
            a.events();
            hex(inv.payment_hash().as_byte_array())
        };
        let t = std::time::Instant::now();
        for i in 0..n {
            let h = pay(1_000 + i as u64);
            until("a payment", || taken(&a, "payment_sent", &h)).await;
            until("its claim", || taken(&b, "payment_claimed", &h)).await;
        }
        let seq = n as f64 / t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let mut flight = std::collections::VecDeque::new();
        let mut done = 0;
        let mut sent = 0;
        while done < n {
            while flight.len() < 10 && sent < n {
                flight.push_back(pay(2_000 + sent as u64));
                sent += 1;
            }
            let h = flight.pop_front().unwrap();
            until("a payment", || taken(&a, "payment_sent", &h)).await;
            until("its claim", || taken(&b, "payment_claimed", &h)).await;
            done += 1;
        }
        let par = n as f64 / t.elapsed().as_secs_f64();
        println!("{}", json!({"sequential_per_s": seq, "in_flight_10_per_s": par}));
    }
}
