//! `nodectl lnp …`: the LNP Node's commands (Lightning peers).

use crate::client::{self, addr_arg, node_id_arg, ClientArgs, Request};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, rtt_text, unexpected};
use clap::Subcommand;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::wire::api::lnp::{LnpMsg, PeerInfo, Protocol};
use lnpbp_nodes::wire::api::Msg;

/// The LNP commands.
#[derive(Subcommand)]
pub enum LnpCmd {
    #[command(flatten)]
    Common(CommonCmd),
    /// Listen for Lightning peers on ADDR (host:port; port 0 picks one).
    Listen {
        /// The address.
        addr: String,
    },
    /// Connect to a peer: [bolt://]NODE_ID@HOST[:PORT] for Lightning (port 9735 by default),
    /// bifrost://NODE_ID@HOST[:PORT] for Bifrost (port 9999 by default).
    Connect {
        /// The peer.
        target: String,
    },
    /// Disconnect a peer.
    Disconnect {
        /// Its node id (hex).
        node_id: String,
        /// Its Bifrost connection rather than its Lightning one.
        #[arg(long)]
        bifrost: bool,
    },
    /// The connected peers: id, address, direction, features, since, bytes, ping RTT.
    Peers,
    /// Ping a peer and print the round-trip time.
    Ping {
        /// Its node id (hex).
        node_id: String,
        /// Bytes of pong to ask for (0 to 65531).
        #[arg(long, default_value_t = 0)]
        bytes: u16,
        /// Ping its Bifrost connection rather than its Lightning one.
        #[arg(long)]
        bifrost: bool,
    },
    /// Channels: `channel open NODE_ID SAT [--push-msat N]` (funded by the BP node's wallet).
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// The channels: id, peer, capacity, balances, state, funding, confirmations.
    Channels,
    /// A BOLT-11 invoice of ours for MSAT millisatoshis (0: any amount).
    Invoice {
        /// Amount (msat).
        msat: u64,
        /// Its description.
        #[arg(long, default_value = "")]
        description: String,
        /// Seconds it is valid.
        #[arg(long, default_value_t = 3600)]
        expiry: u32,
    },
    /// Pay a BOLT-11 invoice whose payee is a channel peer.
    Pay {
        /// The invoice.
        bolt11: String,
        /// Amount (msat) for an invoice without one.
        #[arg(long)]
        amount_msat: Option<u64>,
        /// Wait until the payment succeeds or fails.
        #[arg(long)]
        wait: bool,
    },
    /// Our payments, newest first.
    Payments,
    /// Close a channel: cooperatively, or by broadcasting our commitment (`--force`).
    Close {
        /// The channel id (64 hex digits).
        channel_id: String,
        /// Force close.
        #[arg(long)]
        force: bool,
    },
    /// Balances per channel, and what is still to be claimed on chain.
    Balance,
}

/// `nodectl lnp channel …`.
#[derive(Subcommand)]
pub enum ChannelCmd {
    /// Open a channel of SAT satoshis to a connected peer.
    Open {
        /// The peer's node id.
        node_id: String,
        /// Capacity (sat).
        sat: u64,
        /// Given to the peer at opening (msat).
        #[arg(long, default_value_t = 0)]
        push_msat: u64,
    },
}

/// Runs an LNP command.
pub fn run(args: ClientArgs<LnpCmd>) -> Result<(), String> {
    let kind = NodeKind::Lnp;
    let req = match &args.cmd {
        LnpCmd::Common(cmd) => return common::run(kind, &args, cmd),
        LnpCmd::Listen { addr } => Request::new(
            LnpMsg::Listen {
                addr: addr_arg(addr)?,
            },
            Box::new(listening),
        ),
        LnpCmd::Connect { target } => {
            let (kind, rest) = if let Some(r) = target.strip_prefix("bifrost://") {
                (Protocol::Bifrost, r)
            } else {
                (
                    Protocol::Lightning,
                    target.strip_prefix("bolt://").unwrap_or(target),
                )
            };
            let (id, addr) = rest.split_once('@').ok_or_else(|| {
                format!(
                    "`{}`: expected [bolt://|bifrost://]NODE_ID@HOST[:PORT]",
                    client::shown(target)
                )
            })?;
            let msg = LnpMsg::Connect {
                node_id: node_id_arg(id)?,
                addr: addr_arg(addr)?,
                protocol: kind,
            };
            Request::new(msg, Box::new(render::success)).slow()
        }
        LnpCmd::Disconnect { node_id, bifrost } => Request::new(
            LnpMsg::Disconnect {
                node_id: node_id_arg(node_id)?,
                protocol: kind_of(*bifrost),
            },
            Box::new(render::success),
        ),
        LnpCmd::Peers => Request::new(LnpMsg::ListPeers, Box::new(peers)),
        LnpCmd::Ping {
            node_id,
            bytes,
            bifrost,
        } => {
            let msg = LnpMsg::PingPeer {
                node_id: node_id_arg(node_id)?,
                num_pong_bytes: *bytes,
                protocol: kind_of(*bifrost),
            };
            Request::new(msg, Box::new(pong)).slow()
        }
        LnpCmd::Channel(ChannelCmd::Open {
            node_id,
            sat,
            push_msat,
        }) => {
            let msg = LnpMsg::ChannelOpen {
                node_id: node_id_arg(node_id)?,
                sats: *sat,
                push_msat: *push_msat,
            };
            Request::new(msg, Box::new(opened)).slow().to(channeld())
        }
        LnpCmd::Channels => Request::new(LnpMsg::ListChannels, Box::new(channels)).to(channeld()),
        LnpCmd::Invoice {
            msat,
            description,
            expiry,
        } => {
            let msg = LnpMsg::MakeInvoice {
                amount_msat: (*msat > 0).then_some(*msat),
                description: description_arg(description)?,
                expiry_secs: *expiry,
            };
            Request::new(msg, Box::new(invoice)).to(channeld())
        }
        LnpCmd::Pay {
            bolt11,
            amount_msat,
            wait,
        } => {
            let msg = LnpMsg::Pay {
                bolt11: client::text_arg(
                    "invoice",
                    bolt11,
                    lnpbp_nodes::wire::limits::MAX_INVOICE,
                )?,
                amount_msat: *amount_msat,
                wait: *wait,
            };
            Request::new(msg, Box::new(payment)).slow().to(channeld())
        }
        LnpCmd::Payments => Request::new(LnpMsg::ListPayments, Box::new(payments)).to(channeld()),
        LnpCmd::Close { channel_id, force } => {
            let msg = LnpMsg::CloseChannel {
                channel_id: client::hex_arg("channel id", channel_id)?
                    .try_into()
                    .map_err(|_| "a channel id is 32 bytes (64 hex digits)".to_string())?,
                force: *force,
            };
            Request::new(msg, Box::new(render::success))
                .slow()
                .to(channeld())
        }
        LnpCmd::Balance => Request::new(LnpMsg::LnBalance, Box::new(balance)).to(channeld()),
    };
    client::run(kind, &args, req)
}

fn kind_of(bifrost: bool) -> Protocol {
    if bifrost {
        Protocol::Bifrost
    } else {
        Protocol::Lightning
    }
}

fn listening(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::Listening { addr }) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", serde_json::json!({ "listening": addr }));
    } else {
        emit!("listening on {addr}");
    }
    Ok(())
}

fn pong(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::PeerPong { rtt_us }) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", serde_json::json!({ "rtt_us": rtt_us }));
    } else {
        emit!("pong in {}", rtt_text(Some(rtt_us)));
    }
    Ok(())
}

fn peers(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::PeerList(peers)) = reply else {
        return Err(unexpected(&reply));
    };
    print_peers(&peers, json);
    Ok(())
}

fn print_peers(peers: &[PeerInfo], json: bool) {
    if json {
        let list: Vec<_> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "node_id": hex(p.node_id), "addr": p.addr,
                    "direction": p.direction.as_str(), "features": hex(&p.features),
                    "connected_since": p.connected_since, "bytes_in": p.bytes_in,
                    "bytes_out": p.bytes_out, "ping_rtt_us": p.ping_rtt_us,
                    "service": p.service, "protocol": p.protocol.name(), "init": p.init,
                })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(list));
        return;
    }
    if peers.is_empty() {
        emit!("no peers");
    }
    for p in peers {
        let rtt = rtt_text(p.ping_rtt_us);
        emit!(
            "{} {} {} {} features {} since {} in {} B out {} B rtt {}{}",
            p.protocol.name(),
            hex(p.node_id),
            p.addr,
            p.direction.as_str(),
            if p.features.is_empty() {
                "-".into()
            } else {
                hex(&p.features)
            },
            p.connected_since,
            p.bytes_in,
            p.bytes_out,
            rtt,
            if p.init {
                ""
            } else {
                " (no init: ready since it answered our ping)"
            }
        );
    }
}

fn channeld() -> lnpbp_nodes::wire::api::ServiceId {
    lnpbp_nodes::wire::api::lnp::CHANNELD
}

fn opened(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::ChannelOpened {
        channel_id,
        funding,
    }) = reply
    else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!(
            "{}",
            serde_json::json!({ "channel_id": hex(channel_id), "funding": funding })
        );
    } else {
        emit!("channel {} pending, funding {funding}", hex(channel_id));
    }
    Ok(())
}

const STATES: [&str; 4] = ["pending", "ready", "offline", "closing"];
const STATUS: [&str; 3] = ["pending", "succeeded", "failed"];

fn channels(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::ChannelList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|c| {
                serde_json::json!({
                    "channel_id": hex(c.channel_id), "peer": hex(c.peer), "capacity_sat": c.capacity_sat,
                    "local_msat": c.local_msat, "remote_msat": c.remote_msat, "outbound": c.outbound,
                    "state": STATES[c.state as usize % 4], "funding": c.funding, "scid": c.scid,
                    "confirmations": c.confirmations, "confirmations_required": c.confirmations_required,
                })
            })
            .collect();
        emit!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if list.is_empty() {
        emit!("no channels");
    }
    for c in &list {
        emit!(
            "{} {} {} sat ours {} msat theirs {} msat {} {} conf {}/{}",
            hex(c.channel_id),
            hex(c.peer),
            c.capacity_sat,
            c.local_msat,
            c.remote_msat,
            STATES[c.state as usize % 4],
            c.funding.as_deref().unwrap_or("-"),
            c.confirmations.map(|n| n.to_string()).unwrap_or("-".into()),
            c.confirmations_required
                .map(|n| n.to_string())
                .unwrap_or("-".into()),
        );
    }
    Ok(())
}

fn invoice(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::Invoice { bolt11, hash }) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!(
            "{}",
            serde_json::json!({ "bolt11": bolt11, "payment_hash": hex(hash) })
        );
    } else {
        emit!("{bolt11}");
    }
    Ok(())
}

fn payment_json(p: &lnpbp_nodes::wire::api::lnp::PaymentRecord) -> serde_json::Value {
    serde_json::json!({
        "payment_hash": hex(p.hash), "direction": if p.outbound { "out" } else { "in" },
        "amount_msat": p.amount_msat, "fee_msat": p.fee_msat, "status": STATUS[p.status as usize % 3],
        "reason": p.reason, "preimage": p.preimage.map(hex), "payee": p.payee.map(hex),
        "created": p.created, "updated": p.updated,
    })
}

fn payment_line(p: &lnpbp_nodes::wire::api::lnp::PaymentRecord) -> String {
    format!(
        "{} {} {} msat {}{}",
        hex(p.hash),
        if p.outbound { "out" } else { "in" },
        p.amount_msat,
        STATUS[p.status as usize % 3],
        p.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )
}

fn payment(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::PaymentInfo(p)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", payment_json(&p));
    } else {
        emit!("{}", payment_line(&p));
    }
    Ok(())
}

fn payments(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::PaymentList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!(
            "{}",
            serde_json::Value::Array(list.iter().map(payment_json).collect())
        );
    } else if list.is_empty() {
        emit!("no payments");
    } else {
        for p in &list {
            emit!("{}", payment_line(p));
        }
    }
    Ok(())
}

fn balance(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Lnp(LnpMsg::LnBalances {
        channels,
        onchain_sat,
        claims,
    }) = reply
    else {
        return Err(unexpected(&reply));
    };
    if json {
        let ch: Vec<_> = channels
            .iter()
            .map(|(id, l, r)| serde_json::json!({ "channel_id": hex(id), "local_msat": l, "remote_msat": r }))
            .collect();
        let total: u64 = channels.iter().map(|(_, l, _)| l).sum();
        emit!(
            "{}",
            serde_json::json!({ "channels": ch, "local_msat": total, "onchain_claimable_sat": onchain_sat, "claims": claims })
        );
    } else {
        for (id, l, r) in &channels {
            emit!("{} ours {l} msat theirs {r} msat", hex(id));
        }
        emit!("to be claimed on chain: {onchain_sat} sat");
        for c in &claims {
            emit!("  {c}");
        }
    }
    Ok(())
}

/// An invoice description: at most 639 bytes (BOLT-11's `d` field), no control characters.
fn description_arg(text: &str) -> Result<String, String> {
    if text.len() > 639 {
        return Err(format!(
            "a description of {} bytes is above 639",
            text.len()
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("a description may not hold control characters".into());
    }
    Ok(text.to_string())
}
