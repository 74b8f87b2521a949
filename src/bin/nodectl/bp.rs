//! `nodectl bp …`: the BP Node's commands (Bitcoin peers, headers, blocks, BLOCKS events).

use crate::client::{self, addr_arg, hex_arg, ClientArgs, Request, Session};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, rtt_text, unexpected};
use bitcoin::hashes::Hash;
use clap::Subcommand;
use lnpbp_nodes::actors::bp::signd;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::signer::{keyfile, AccountKind, Keychain};
use lnpbp_nodes::wire::api::bp::MAX_BLOB;
use lnpbp_nodes::wire::api::bp::{BlockQuery, BlockRef, BpMsg, WatchHit, WatchTarget};
use lnpbp_nodes::wire::api::Msg;
use std::os::unix::fs::DirBuilderExt;

/// The BP commands.
#[derive(Subcommand)]
pub enum BpCmd {
    #[command(flatten)]
    Common(CommonCmd),
    /// The Bitcoin peers: address, direction, user agent, version, start height, ping RTT.
    Peers,
    /// Connect to a Bitcoin peer at HOST:PORT.
    Connect {
        /// The address.
        addr: String,
    },
    /// A header of the best chain by height, or any known header by hash.
    Header {
        /// Height or block hash (hex, as explorers show it).
        block: String,
    },
    /// A block by height or hash, fetched from a peer: raw hex, or a summary with --json.
    Block {
        /// Height or block hash.
        block: String,
    },
    /// A transaction by txid: mined (height, block, position, confirmations), in our mempool,
    /// or unknown (with the indexed range); the raw transaction when known.
    Tx {
        /// The txid (hex, as explorers show it).
        txid: String,
    },
    /// The wallet's balance (the signer's two accounts): confirmed, unconfirmed, immature.
    Balance,
    /// The wallet's unspent outputs.
    Utxos,
    /// The wallet's transactions, newest first.
    History,
    /// Pay SAT satoshis to ADDRESS from the wallet: coin selection, change to our change
    /// chain, signed by signd, broadcast (not with --dry-run); prints the txid and fee.
    Send {
        /// The address (of the node's network).
        address: String,
        /// Satoshis.
        sat: u64,
        /// Fee rate in sat/vB (default: `[fees] default_target`'s, see `bp fees`).
        #[arg(long)]
        fee_rate: Option<u64>,
        /// Build and sign it, print it, and neither broadcast it nor count it as sent.
        #[arg(long)]
        dry_run: bool,
    },
    /// The fee rates per confirmation target, and where each comes from.
    Fees,
    /// Announce a raw transaction (hex) to the peers.
    Broadcast {
        /// The serialized transaction in hex.
        tx: String,
    },
    /// Print each block event (connected, disconnected) as it arrives, until interrupted; or,
    /// with a target, keep a watch on it (owner `nodectl`) and print its events: tx_confirmed,
    /// outpoint_spent, tx_unconfirmed, tx_seen (relayed, unconfirmed).
    Watch {
        /// Outputs paying this address (and their spends).
        #[arg(long, group = "target")]
        address: Option<String>,
        /// Outputs paying this output script (hex).
        #[arg(long, group = "target")]
        script: Option<String>,
        /// The spend of TXID:VOUT.
        #[arg(long, group = "target")]
        outpoint: Option<String>,
        /// This transaction.
        #[arg(long, group = "target")]
        txid: Option<String>,
        /// Watch from this height: blocks already indexed from there are downloaded again and
        /// rescanned (their events come as the rescan finds them).
        #[arg(long, requires = "target")]
        from_height: Option<u32>,
    },
    /// The signer: its accounts (`xpub`), or a mnemonic to restore (`import`).
    Signer {
        #[command(subcommand)]
        cmd: SignerCmd,
    },
    /// A receive address of the signer: the next unused one, or the one at --index.
    Address {
        /// A P2TR (BIP86) address instead of P2WPKH (BIP84).
        #[arg(long)]
        taproot: bool,
        /// The address at this index (below 2^31); the next unused index is not changed.
        #[arg(long)]
        index: Option<u32>,
    },
    /// Sign the inputs of a PSBT that are the signer's own; print the signed PSBT (base64), or
    /// with --finalize the raw transaction (hex) once every input is final.
    Sign {
        /// The PSBT: base64, or a FILE holding it (binary or base64).
        psbt: String,
        /// Finalize the inputs and print the transaction if every input is final.
        #[arg(long)]
        finalize: bool,
    },
}

/// The signer's commands.
#[derive(Subcommand)]
pub enum SignerCmd {
    /// The master fingerprint, and each account's path, xpub and output descriptors.
    Xpub,
    /// Restore a key from its BIP39 mnemonic, read from stdin, into DATA_DIR/signer.key
    /// (offline: the node must be stopped, and no key file may be there).
    Import,
}

/// Runs a BP command.
pub fn run(args: ClientArgs<BpCmd>) -> Result<(), String> {
    let kind = NodeKind::Bp;
    let req = match &args.cmd {
        BpCmd::Common(cmd) => return common::run(kind, &args, cmd),
        BpCmd::Watch {
            address,
            script,
            outpoint,
            txid,
            from_height,
        } => {
            let target = match (address, script, outpoint, txid) {
                (Some(a), ..) => Some(address_arg(a)?),
                (_, Some(h), ..) => Some(WatchTarget::Script(hex_arg("the script", h)?)),
                (_, _, Some(o), _) => {
                    let op: bitcoin::OutPoint = o
                        .parse()
                        .map_err(|_| format!("`{}` is not TXID:VOUT", client::shown(o)))?;
                    Some(WatchTarget::Outpoint(op.txid.to_byte_array(), op.vout))
                }
                (.., Some(t)) => {
                    let t: bitcoin::Txid = t
                        .parse()
                        .map_err(|_| format!("`{}` is not a txid", client::shown(t)))?;
                    Some(WatchTarget::Txid(t.to_byte_array()))
                }
                _ => None,
            };
            return match target {
                None => watch(&args),
                Some(t) => watch_target(&args, t, *from_height),
            };
        }
        BpCmd::Signer {
            cmd: SignerCmd::Import,
        } => return import(&args),
        BpCmd::Signer {
            cmd: SignerCmd::Xpub,
        } => {
            return to_signd(
                &args,
                BpMsg::SignerInfo,
                Box::new(accounts),
                client::TIMEOUT,
            )
        }
        BpCmd::Address { taproot, index } => {
            if index.is_some_and(|i| i >= 1 << 31) {
                return Err(format!(
                    "--index {}: must be below 2147483648 (2^31)",
                    index.unwrap_or_default()
                ));
            }
            let msg = BpMsg::GetAddress {
                taproot: *taproot,
                index: *index,
            };
            return to_signd(&args, msg, Box::new(address), client::TIMEOUT);
        }
        BpCmd::Sign { psbt, finalize } => {
            let msg = BpMsg::SignPsbt {
                psbt: psbt_arg(psbt)?,
                finalize: *finalize,
            };
            return to_signd(&args, msg, Box::new(signed), client::SLOW_TIMEOUT);
        }
        BpCmd::Peers => Request::new(BpMsg::BtcPeers, Box::new(peers)),
        BpCmd::Connect { addr } => Request::new(
            BpMsg::BtcConnect {
                addr: addr_arg(addr)?,
            },
            Box::new(render::success),
        )
        .slow(),
        BpCmd::Header { block } => {
            Request::new(BpMsg::GetHeader(block_query(block)?), Box::new(header))
        }
        BpCmd::Block { block } => {
            Request::new(BpMsg::GetBlock(block_query(block)?), Box::new(block_data)).slow()
        }
        BpCmd::Tx { txid } => {
            let txid: bitcoin::Txid = txid
                .parse()
                .map_err(|_| format!("`{}` is not a txid (64 hex digits)", client::shown(txid)))?;
            Request::new(
                BpMsg::GetTx {
                    txid: txid.to_byte_array(),
                },
                Box::new(tx_info),
            )
            .slow()
        }
        BpCmd::Balance => Request::new(BpMsg::WalletBalance, Box::new(balance)),
        BpCmd::Fees => Request::new(BpMsg::GetFees, Box::new(fees)),
        BpCmd::Send {
            address,
            sat,
            fee_rate,
            dry_run,
        } => Request::new(
            BpMsg::WalletSend {
                address: client::text_arg("the address", address, 128)?,
                sats: *sat,
                fee_rate: *fee_rate,
                dry_run: *dry_run,
            },
            Box::new(sent),
        )
        .slow(),
        BpCmd::Utxos => Request::new(BpMsg::WalletUtxos, Box::new(utxos)),
        BpCmd::History => Request::new(BpMsg::WalletHistory, Box::new(history)),
        BpCmd::Broadcast { tx } => Request::new(
            BpMsg::Broadcast {
                tx: hex_arg("the transaction", tx)?,
            },
            Box::new(broadcasted),
        ),
    };
    client::run(kind, &args, req)
}

/// Sends `msg` to `signd` on the API bus and renders its reply.
fn to_signd(
    args: &ClientArgs<BpCmd>,
    msg: BpMsg,
    render: client::Render,
    timeout: f64,
) -> Result<(), String> {
    let mut s = Session::open(NodeKind::Bp, args, BusKind::Api, timeout)?;
    let reply = s.request_to(&signd::id(), msg.into())?;
    render(reply, args.json)
}

/// `signer import`: the mnemonic from stdin into DATA_DIR/signer.key, checked first. It never
/// crosses a socket, and no message repeats it.
fn import(args: &ClientArgs<BpCmd>) -> Result<(), String> {
    let dir = client::data_dir(NodeKind::Bp, args.data_dir.clone())?;
    let path = dir.join(keyfile::FILE);
    if path.exists() {
        return Err(format!(
            "{} exists: stop the node and move it away first (back it up: it holds the only \
             copy of its mnemonic)",
            path.display()
        ));
    }
    let text = client::read_bounded(std::io::stdin().lock(), 1024, "stdin")?;
    let words = keyfile::normalize(&String::from_utf8_lossy(&text));
    // Checked before anything is written (the network does not change the fingerprint).
    let keychain = Keychain::from_mnemonic(&words, bitcoin::Network::Regtest).map_err(|e| e.0)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    keyfile::write_new(&path, &words).map_err(|e| e.0)?;
    if args.json {
        emit!(
            "{}",
            serde_json::json!({ "key": path.display().to_string(),
                "fingerprint": keychain.fingerprint().to_string() })
        );
    } else {
        emit!(
            "imported into {} (fingerprint {}); start the node to use it",
            path.display(),
            keychain.fingerprint()
        );
    }
    Ok(())
}

/// A PSBT argument: base64 text, or a file with a binary or base64 PSBT.
fn psbt_arg(arg: &str) -> Result<Vec<u8>, String> {
    use bitcoin::base64::Engine;
    let path = std::path::Path::new(arg);
    let text = if path.is_file() {
        let f = std::fs::File::open(path).map_err(|e| format!("cannot open {arg}: {e}"))?;
        let bytes = client::read_bounded(f, MAX_BLOB, arg)?;
        if bytes.starts_with(b"psbt\xff") {
            return Ok(bytes);
        }
        String::from_utf8_lossy(&bytes).trim().to_string()
    } else {
        arg.trim().to_string()
    };
    bitcoin::base64::prelude::BASE64_STANDARD
        .decode(text.as_bytes())
        .map_err(|_| {
            format!(
                "`{}` is neither a file nor a base64 PSBT",
                client::shown(&text)
            )
        })
}

fn accounts(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::SignerAccounts {
        fingerprint,
        accounts,
    }) = reply
    else {
        return Err(unexpected(&reply));
    };
    let kind = |k: u8| {
        AccountKind::from_tag(k)
            .map(|k| k.name())
            .unwrap_or("unknown")
    };
    if json {
        let list: Vec<_> = accounts
            .iter()
            .map(|a| {
                serde_json::json!({ "kind": kind(a.kind), "path": a.path, "xpub": a.xpub,
                    "receive": a.receive, "change": a.change })
            })
            .collect();
        emit!(
            "{}",
            serde_json::json!({ "fingerprint": hex(fingerprint), "accounts": list })
        );
    } else {
        emit!("fingerprint {}", hex(fingerprint));
        for a in &accounts {
            emit!("{} {} {}", kind(a.kind), a.path, a.xpub);
            emit!("  receive {}", a.receive);
            emit!("  change  {}", a.change);
        }
    }
    Ok(())
}

fn address(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::AddressInfo(a)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let kind = AccountKind::from_tag(a.kind)
            .map(|k| k.name())
            .unwrap_or("unknown");
        emit!(
            "{}",
            serde_json::json!({ "address": a.address, "kind": kind, "index": a.index,
                "path": a.path, "script": hex(&a.script), "pubkey": hex(a.pubkey.serialize()) })
        );
    } else {
        emit!("{}", a.address);
    }
    Ok(())
}

fn signed(reply: Msg, json: bool) -> Result<(), String> {
    use bitcoin::base64::Engine;
    let Msg::Bp(BpMsg::PsbtSigned(s)) = reply else {
        return Err(unexpected(&reply));
    };
    let psbt = (!s.finalized).then(|| bitcoin::base64::prelude::BASE64_STANDARD.encode(&s.data));
    if json {
        let mut v = serde_json::json!({ "signed": s.signed, "fee": s.fee,
            "finalized": s.finalized, "not_final": s.not_final });
        // `data` as docs/API.md names it: the PSBT in base64, or the raw transaction in hex
        // once final (then with its txid).
        match &psbt {
            Some(p) => v["data"] = serde_json::json!(p),
            None => {
                let tx: bitcoin::Transaction =
                    bitcoin::consensus::deserialize(&s.data).map_err(|e| {
                        format!("the node sent a transaction that does not decode: {e}")
                    })?;
                v["data"] = serde_json::json!(hex(&s.data));
                v["txid"] = serde_json::json!(tx.compute_txid().to_string());
            }
        }
        emit!("{v}");
    } else {
        let which: Vec<String> = s.signed.iter().map(u32::to_string).collect();
        eprintln!(
            "signed input(s) [{}]; fee {} sat{}",
            which.join(", "),
            s.fee,
            if s.not_final.is_empty() {
                String::new()
            } else {
                format!("; not final: {:?}", s.not_final)
            }
        );
        match psbt {
            Some(p) => emit!("{p}"),
            None => emit!("{}", hex(&s.data)),
        }
    }
    Ok(())
}

fn broadcasted(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::Broadcasted { txid, peers }) = reply else {
        return Err(render::unexpected(&reply));
    };
    let txid = bitcoin::Txid::from_byte_array(txid);
    if json {
        emit!(
            "{}",
            serde_json::json!({ "txid": txid.to_string(), "peers": peers })
        );
    } else {
        emit!("{txid} announced to {peers} peer(s)");
    }
    Ok(())
}

fn account_name(kind: u8) -> &'static str {
    AccountKind::from_tag(kind)
        .map(|k| k.name())
        .unwrap_or("unknown")
}

fn fees(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::FeeRates(list)) = reply else {
        return Err(render::unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|f| {
                serde_json::json!({ "target_blocks": f.target, "sat_per_vb": f.sat_per_vb,
                    "source": f.source })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(v));
    } else {
        for f in &list {
            emit!(
                "{:>5} blocks  {:>6} sat/vB  {}",
                f.target,
                f.sat_per_vb,
                f.source
            );
        }
    }
    Ok(())
}

fn sent(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::WalletSent(w)) = reply else {
        return Err(render::unexpected(&reply));
    };
    let txid = bitcoin::Txid::from_byte_array(w.txid).to_string();
    if json {
        emit!(
            "{}",
            serde_json::json!({ "txid": txid, "fee": w.fee, "account": account_name(w.kind),
                "broadcast": w.peers.is_some(), "peers": w.peers, "tx": hex(&w.tx) })
        );
    } else {
        match w.peers {
            Some(n) => emit!("{txid} sent (fee {} sat), announced to {n} peer(s)", w.fee),
            None => emit!(
                "{txid} signed, not broadcast (fee {} sat)\n{}",
                w.fee,
                hex(&w.tx)
            ),
        }
    }
    Ok(())
}

fn balance(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::WalletBalances(list)) = reply else {
        return Err(render::unexpected(&reply));
    };
    let sum = |f: fn(&lnpbp_nodes::wire::api::bp::AccountBalance) -> u64| -> u64 {
        list.iter().map(f).sum()
    };
    let (confirmed, unconfirmed, immature) = (
        sum(|b| b.confirmed),
        sum(|b| b.trusted_pending + b.untrusted_pending),
        sum(|b| b.immature),
    );
    if json {
        let accounts: Vec<_> = list
            .iter()
            .map(|b| {
                serde_json::json!({ "account": account_name(b.kind), "confirmed": b.confirmed,
                    "unconfirmed": b.trusted_pending + b.untrusted_pending,
                    "trusted_pending": b.trusted_pending,
                    "untrusted_pending": b.untrusted_pending, "immature": b.immature })
            })
            .collect();
        emit!(
            "{}",
            serde_json::json!({ "confirmed": confirmed, "unconfirmed": unconfirmed,
                "immature": immature, "accounts": accounts })
        );
    } else {
        emit!("confirmed {confirmed} sat, unconfirmed {unconfirmed} sat, immature {immature} sat");
        for b in &list {
            emit!(
                "  {:<7} confirmed {} unconfirmed {} immature {}",
                account_name(b.kind),
                b.confirmed,
                b.trusted_pending + b.untrusted_pending,
                b.immature
            );
        }
    }
    Ok(())
}

fn utxos(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::WalletUtxoList(list)) = reply else {
        return Err(render::unexpected(&reply));
    };
    let row = |u: &lnpbp_nodes::wire::api::bp::WalletUtxo| {
        serde_json::json!({ "outpoint": format!("{}:{}", bitcoin::Txid::from_byte_array(u.txid), u.vout),
            "value": u.value, "address": u.address, "account": account_name(u.kind),
            "chain": if u.chain == 0 { "receive" } else { "change" }, "index": u.index,
            "height": u.height })
    };
    if json {
        let v: Vec<_> = list.iter().map(row).collect();
        emit!("{}", serde_json::Value::Array(v));
    } else {
        for u in &list {
            let at = u
                .height
                .map(|h| format!("height {h}"))
                .unwrap_or_else(|| "unconfirmed".into());
            emit!(
                "{}:{} {} sat {} ({} {}/{}) {at}",
                bitcoin::Txid::from_byte_array(u.txid),
                u.vout,
                u.value,
                u.address,
                account_name(u.kind),
                u.chain,
                u.index
            );
        }
    }
    Ok(())
}

fn history(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::WalletTxList(list)) = reply else {
        return Err(render::unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|t| {
                serde_json::json!({ "txid": bitcoin::Txid::from_byte_array(t.txid).to_string(),
                    "account": account_name(t.kind), "amount": t.delta, "fee": t.fee,
                    "height": t.height, "time": t.time })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(v));
    } else {
        for t in &list {
            let at = t
                .height
                .map(|h| format!("height {h}"))
                .unwrap_or_else(|| "unconfirmed".into());
            emit!(
                "{} {:+} sat ({}) {at}",
                bitcoin::Txid::from_byte_array(t.txid),
                t.delta,
                account_name(t.kind)
            );
        }
    }
    Ok(())
}

fn tx_info(reply: Msg, json: bool) -> Result<(), String> {
    use lnpbp_nodes::wire::api::bp::TxStatus;
    let Msg::Bp(BpMsg::TxInfo(info)) = reply else {
        return Err(render::unexpected(&reply));
    };
    let txid = bitcoin::Txid::from_byte_array(info.txid).to_string();
    let raw = info.tx.as_ref().map(hex);
    let (mut v, text) = match info.status {
        TxStatus::Mined {
            height,
            hash,
            time,
            pos,
            confirmations,
        } => {
            let block = bitcoin::BlockHash::from_byte_array(hash).to_string();
            (
                serde_json::json!({ "txid": txid, "status": "mined", "height": height,
                    "block": block, "time": time, "position": pos,
                    "confirmations": confirmations }),
                format!(
                    "{txid} mined at height {height} in block {block} (time {time}), position \
                     {pos}, {confirmations} confirmation(s)"
                ),
            )
        }
        TxStatus::Mempool => (
            serde_json::json!({ "txid": txid, "status": "mempool" }),
            format!("{txid} in our mempool (not mined in the indexed range)"),
        ),
        TxStatus::Unknown { indexed } => {
            let (range, text) = match indexed {
                Some((a, b)) => (
                    serde_json::json!({ "from": a, "to": b }),
                    if a > 0 {
                        format!(
                            "{txid} unknown: not in our mempool nor in blocks {a}..={b} (the \
                             index starts at {a}: it may be mined below)"
                        )
                    } else {
                        format!("{txid} unknown: not in our mempool nor in blocks {a}..={b}")
                    },
                ),
                None => (
                    serde_json::Value::Null,
                    format!("{txid} unknown: not in our mempool, and nothing is indexed yet"),
                ),
            };
            (
                serde_json::json!({ "txid": txid, "status": "unknown", "indexed": range }),
                text,
            )
        }
    };
    if json {
        v["tx"] = raw.map(serde_json::Value::String).unwrap_or_default();
        emit!("{v}");
    } else {
        emit!("{text}");
        if let Some(raw) = raw {
            emit!("{raw}");
        }
    }
    Ok(())
}

/// A height (u32) or a block hash as explorers show it.
fn block_query(text: &str) -> Result<BlockQuery, String> {
    if let Ok(h) = text.parse::<u32>() {
        return Ok(BlockQuery::Height(h));
    }
    let hash: bitcoin::BlockHash = text.parse().map_err(|_| {
        format!(
            "`{}` is neither a height nor a block hash",
            client::shown(text)
        )
    })?;
    Ok(BlockQuery::Hash(hash.to_byte_array()))
}

fn block_json(b: &BlockRef, connected: Option<bool>) -> Result<serde_json::Value, String> {
    let header: bitcoin::block::Header = bitcoin::consensus::deserialize(&b.header)
        .map_err(|e| format!("the node sent a bad header: {e}"))?;
    let mut v = serde_json::json!({
        "height": b.height,
        "hash": bitcoin::BlockHash::from_byte_array(b.hash).to_string(),
        "prev": header.prev_blockhash.to_string(),
        "time": header.time,
        "bits": format!("{:08x}", header.bits.to_consensus()),
        "header": hex(b.header),
    });
    if let Some(c) = connected {
        v["event"] = serde_json::json!(if c {
            "block_connected"
        } else {
            "block_disconnected"
        });
    }
    Ok(v)
}

fn peers(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::BtcPeerList(peers)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let list: Vec<_> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "addr": p.addr, "direction": if p.outbound { "outbound" } else { "inbound" },
                    "user_agent": p.user_agent, "version": p.version,
                    "start_height": p.start_height, "ping_rtt_us": p.ping_rtt_us,
                })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    if peers.is_empty() {
        emit!("no peers");
    }
    for p in peers {
        let rtt = rtt_text(p.ping_rtt_us);
        let dir = if p.outbound { "outbound" } else { "inbound" };
        emit!(
            "{} {dir} {} version {} start height {} rtt {rtt}",
            p.addr,
            p.user_agent,
            p.version,
            p.start_height
        );
    }
    Ok(())
}

fn header(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::HeaderInfo(b)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", block_json(&b, None)?);
    } else {
        emit!("{}", hex(b.header));
    }
    Ok(())
}

fn block_data(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Bp(BpMsg::BlockData { height, hash, raw }) = reply else {
        return Err(unexpected(&reply));
    };
    if !json {
        emit!("{}", hex(&raw));
        return Ok(());
    }
    let hash = bitcoin::BlockHash::from_byte_array(hash);
    let block: bitcoin::Block = bitcoin::consensus::deserialize(&raw)
        .map_err(|e| format!("the node sent a bad block: {e}"))?;
    emit!(
        "{}",
        serde_json::json!({
            "height": height, "hash": hash.to_string(),
            "computed_hash": block.block_hash().to_string(),
            "prev": block.header.prev_blockhash.to_string(),
            "time": block.header.time, "tx_count": block.txdata.len(),
            "size": raw.len(),
            "txids": block.txdata.iter().map(|t| t.compute_txid().to_string()).collect::<Vec<_>>(),
        })
    );
    Ok(())
}

/// `nodectl bp watch`: subscribes on the BLOCKS bus and prints each event.
/// An address of any network, as its output script.
fn address_arg(text: &str) -> Result<WatchTarget, String> {
    let a: bitcoin::Address<bitcoin::address::NetworkUnchecked> = text
        .parse()
        .map_err(|_| format!("`{}` is not a Bitcoin address", client::shown(text)))?;
    Ok(WatchTarget::Script(
        a.assume_checked().script_pubkey().to_bytes(),
    ))
}

/// The owner of the CLI's watches.
const CLI_OWNER: &str = "nodectl";

/// `watch --address/--script/--outpoint/--txid`: adds the watch (kept by the node; its id
/// is the target's kind and a digest), then follows its events as JSON lines or text.
fn watch_target(
    args: &ClientArgs<BpCmd>,
    target: WatchTarget,
    from_height: Option<u32>,
) -> Result<(), String> {
    use bitcoin::hashes::{sha256, Hash as _};
    let (kind, bytes) = match &target {
        WatchTarget::Script(s) => ("script", s.clone()),
        WatchTarget::Outpoint(t, v) => ("outpoint", [&t[..], &v.to_le_bytes()].concat()),
        WatchTarget::Txid(t) => ("txid", t.to_vec()),
    };
    let id = format!(
        "{kind}-{}",
        &hex(sha256::Hash::hash(&bytes).to_byte_array())[..16]
    );
    let mut s = Session::open(NodeKind::Bp, args, BusKind::Api, client::TIMEOUT)?;
    let add = BpMsg::AddWatch {
        owner: CLI_OWNER.into(),
        id: id.clone(),
        target,
        from_height,
    };
    let Msg::Bp(BpMsg::WatchInfo(info)) = s.request(add.into())? else {
        return Err("the node did not answer add_watch with watch_info".into());
    };
    let since = match from_height {
        None => None,
        Some(h) if h < info.from_height => {
            return Err(format!(
                "this watch was kept before, from height {}: the node rescans only when a watch \
                 is added",
                info.from_height
            ))
        }
        Some(0) => None,
        Some(h) => {
            let q = BpMsg::GetHeader(BlockQuery::Height(h - 1));
            match s.request(q.into())? {
                Msg::Bp(BpMsg::HeaderInfo(r)) => Some(r.hash),
                other => return Err(unexpected(&other)),
            }
        }
    };
    let json = args.json;
    if json {
        emit!(
            "{}",
            serde_json::json!({ "event": "watching", "watch": id, "from_height": info.from_height })
        );
    } else {
        emit!("watching {id} from height {}", info.from_height);
    }
    // The last block seen (height, hash): a renewal names it, and gets only what came after.
    let last = std::cell::Cell::new(since.map(|h| (0, h)));
    let saw = |height: u32, hash: [u8; 32]| {
        if last.get().is_none_or(|(h, _)| height >= h) {
            last.set(Some((height, hash)));
        }
    };
    let subscribe = || {
        BpMsg::SubscribeWatches {
            owner: CLI_OWNER.into(),
            since: last.get().map(|l| l.1),
            filtered: false,
        }
        .into()
    };
    match s.request(subscribe())? {
        Msg::Bp(BpMsg::WatchSynced(w)) => saw(w.height, w.hash),
        other => return Err(unexpected(&other)),
    }
    s.follow_with(subscribe, |env| {
        let Msg::Bp(m) = &env.msg else {
            return client::Step::Other;
        };
        match m {
            BpMsg::WatchSynced(w) => {
                saw(w.height, w.hash);
                client::Step::Other
            }
            BpMsg::TxConfirmed(h) | BpMsg::OutpointSpent(h) if h.id == id => {
                saw(h.height, h.block);
                let spent = matches!(m, BpMsg::OutpointSpent(_));
                emit!("{}", watch_hit_text(h, spent, json));
                client::Step::Event
            }
            BpMsg::TxSeen { id: w, txid, tx } if *w == id => {
                let txid = bitcoin::Txid::from_byte_array(*txid);
                if json {
                    emit!(
                        "{}",
                        serde_json::json!({ "event": "tx_seen", "watch": w,
                            "txid": txid.to_string(), "tx": hex(tx) })
                    );
                } else {
                    emit!("tx_seen        {txid} (unconfirmed, relayed by a peer)");
                }
                client::Step::Event
            }
            BpMsg::TxUnconfirmed {
                id: w,
                txid,
                height,
                block,
            } if *w == id => {
                let txid = bitcoin::Txid::from_byte_array(*txid);
                let block = bitcoin::BlockHash::from_byte_array(*block);
                if json {
                    emit!(
                        "{}",
                        serde_json::json!({ "event": "tx_unconfirmed", "watch": w,
                            "txid": txid.to_string(), "height": height,
                            "block": block.to_string() })
                    );
                } else {
                    emit!("tx_unconfirmed {txid} (was at height {height} in {block})");
                }
                client::Step::Event
            }
            _ => client::Step::Other,
        }
    })
}

fn watch_hit_text(h: &WatchHit, spent: bool, json: bool) -> String {
    let txid = bitcoin::Txid::from_byte_array(h.txid).to_string();
    let block = bitcoin::BlockHash::from_byte_array(h.block).to_string();
    let event = if spent {
        "outpoint_spent"
    } else {
        "tx_confirmed"
    };
    let spent_op = h
        .spent
        .map(|(t, v, _)| format!("{}:{v}", bitcoin::Txid::from_byte_array(t)));
    if json {
        serde_json::json!({ "event": event, "watch": h.id, "txid": txid, "height": h.height,
            "block": block, "position": h.pos, "confirmations": h.confirmations,
            "vout": h.vout, "spent": spent_op, "input": h.spent.map(|s| s.2),
            "tx": hex(&h.tx) })
        .to_string()
    } else {
        let what = match (&spent_op, h.vout) {
            (Some(op), _) => format!(" spends {op}"),
            (None, Some(v)) => format!(" output {v}"),
            _ => String::new(),
        };
        format!(
            "{event:<14} {txid}{what} at height {} in {block} (position {}, {} confirmation(s))",
            h.height, h.pos, h.confirmations
        )
    }
}

fn watch(args: &ClientArgs<BpCmd>) -> Result<(), String> {
    let mut s = Session::open(NodeKind::Bp, args, BusKind::Blocks, client::TIMEOUT)?;
    let json = args.json;
    s.follow(BpMsg::SubscribeBlocks.into(), json, |env| {
        let (b, connected) = match &env.msg {
            Msg::Bp(BpMsg::BlockConnected(b)) => (b, true),
            Msg::Bp(BpMsg::BlockDisconnected(b)) => (b, false),
            _ => return false,
        };
        if json {
            match block_json(b, Some(connected)) {
                Ok(v) => emit!("{v}"),
                Err(e) => eprintln!("nodectl: error: {e}"),
            }
        } else {
            let hash = bitcoin::BlockHash::from_byte_array(b.hash);
            let what = if connected {
                "connected"
            } else {
                "disconnected"
            };
            emit!("{what:<12} {} {hash}", b.height);
        }
        true
    })
}
