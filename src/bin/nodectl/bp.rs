//! `nodectl bp …`: the BP Node's commands (Bitcoin peers, headers, blocks, BLOCKS events).

use crate::client::{self, addr_arg, hex_arg, ClientArgs, Request, Session};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, rtt_text, unexpected};
use bitcoin::hashes::Hash;
use clap::Subcommand;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::bp_api::{BlockQuery, BlockRef, BpMsg};
use lnpbp_nodes::wire::msg::Msg;

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
    /// Announce a raw transaction (hex) to the peers.
    Broadcast {
        /// The serialized transaction in hex.
        tx: String,
    },
    /// Print each block event (connected, disconnected) as it arrives, until interrupted.
    Watch,
}

/// Runs a BP command.
pub fn run(args: ClientArgs<BpCmd>) -> Result<(), String> {
    let kind = NodeKind::Bp;
    let req = match &args.cmd {
        BpCmd::Common(cmd) => return common::run(kind, &args, cmd),
        BpCmd::Watch => return watch(&args),
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
        BpCmd::Broadcast { tx } => Request::new(
            BpMsg::Broadcast {
                tx: hex_arg("the transaction", tx)?,
            },
            Box::new(broadcasted),
        ),
    };
    client::run(kind, &args, req)
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
        "header": hex(&b.header),
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
        emit!("{}", hex(&b.header));
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
