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
                    "service": p.service, "protocol": p.protocol.name(),
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
            "{} {} {} {} features {} since {} in {} B out {} B rtt {}",
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
            rtt
        );
    }
}
