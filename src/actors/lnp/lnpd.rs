//! The LNP requests of `lnpd` (an [`Extension`] of the node manager): `listen`, `connect`,
//! `disconnect`, `peers`, `ping`, and on the MSG bus `subscribe_peer_messages` and
//! `send_peer_message`. Long requests are answered by the `peerd` they concern.

use super::peerd::{PeerCmd, Peerd};
use super::peers::Registry;
use crate::actors::conn::Command;
use crate::actors::manager::Extension;
use crate::bus::Deliver;
use crate::wire::bolt1::msg_type;
use crate::wire::lnp_api::LnpMsg;
use crate::wire::msg::{code, Msg, ServiceId};
use bitcoin::hex::DisplayHex;
use bitcoin::secp256k1::PublicKey;
use std::sync::Arc;

/// Port of `connect` addresses given without one (BOLT-1's default).
pub const DEFAULT_PORT: u16 = 9735;

/// The extension; all state is in the shared [`Registry`].
pub struct Lnpd {
    registry: Arc<Registry>,
}

impl Lnpd {
    /// The extension over `registry`.
    pub fn new(registry: Arc<Registry>) -> Lnpd {
        Lnpd { registry }
    }
}

/// `host` → `host:9735`; `host:port` and `[v6]:port` unchanged.
pub fn with_default_port(addr: &str) -> String {
    let has_port = match addr.rfind(']') {
        Some(close) => addr[close..].contains(':'),
        None => addr.contains(':'),
    };
    if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

impl Extension for Lnpd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = &d;
        let not_found = |id: &[u8; 33]| {
            Msg::failure(
                code::NOT_FOUND,
                format!("not connected to {}", id.to_lower_hex_string()),
            )
        };
        // Hands a command to a peer, which answers the request itself (`None`, and `?` ends
        // here); a full mailbox is answered now.
        let send = |actor: actix::Addr<Peerd>, cmd: PeerCmd| match actor.try_send(Command(cmd)) {
            Ok(()) => None,
            Err(_) => Some(Msg::failure(
                code::BUSY,
                "the peer's mailbox is full; retry",
            )),
        };
        let reply = match &env.msg {
            Msg::Lnp(LnpMsg::Listen { addr }) => match addr.parse::<std::net::SocketAddr>() {
                // An IP address, never a host name: resolving one would block the manager.
                Err(_) => Msg::failure(
                    code::INVALID_ARGUMENT,
                    format!("`{addr}` is not an IP address and port (e.g. 0.0.0.0:9735)"),
                ),
                Ok(sa) => match self.registry.bind(&sa.to_string()) {
                    Ok(local) => LnpMsg::Listening {
                        addr: local.to_string(),
                    }
                    .into(),
                    Err(e) => Msg::failure(code::REFUSED, e),
                },
            },
            Msg::Lnp(LnpMsg::Connect { node_id, addr }) => match PublicKey::from_slice(node_id) {
                Ok(remote) => {
                    let addr = with_default_port(addr);
                    self.registry
                        .connect(remote, addr, (bus.clone(), env.clone()));
                    return None; // peerd answers
                }
                Err(_) => Msg::failure(code::INVALID_ARGUMENT, "the node id is not a public key"),
            },
            Msg::Lnp(LnpMsg::Disconnect { node_id }) => match self.registry.find(node_id) {
                Some(actor) => {
                    let cmd = PeerCmd::Disconnect {
                        reply: Some((bus.clone(), env.clone())),
                        reason: format!("disconnect requested by {}", env.src),
                    };
                    send(actor, cmd)?
                }
                None => not_found(node_id),
            },
            Msg::Lnp(LnpMsg::ListPeers) => LnpMsg::PeerList(self.registry.list()).into(),
            Msg::Lnp(LnpMsg::PingPeer {
                node_id,
                num_pong_bytes,
            }) => match self.registry.find(node_id) {
                Some(actor) => {
                    let cmd = PeerCmd::Ping {
                        bus: bus.clone(),
                        env: env.clone(),
                        num_pong_bytes: *num_pong_bytes,
                    };
                    send(actor, cmd)?
                }
                None => not_found(node_id),
            },
            Msg::Lnp(LnpMsg::SubscribePeerMessages { types }) => {
                match self.registry.subscribe(bus.clone(), env, types.clone()) {
                    Ok(()) => Msg::Success(Some(format!(
                        "forwarding {} message type(s) to {}",
                        types.len(),
                        env.src
                    ))),
                    Err(e) => Msg::failure(code::BUSY, e),
                }
            }
            Msg::Lnp(LnpMsg::SendPeerMessage(m)) => {
                if [msg_type::INIT, msg_type::PING, msg_type::PONG].contains(&m.type_id) {
                    Msg::failure(
                        code::REFUSED,
                        format!("type {} is handled by peerd itself", m.type_id),
                    )
                } else {
                    match self.registry.find(&m.node_id) {
                        Some(actor) => {
                            let cmd = PeerCmd::Send {
                                bus: bus.clone(),
                                env: env.clone(),
                                msg: m.clone(),
                            };
                            send(actor, cmd)?
                        }
                        None => not_found(&m.node_id),
                    }
                }
            }
            _ => return Some(d),
        };
        bus.send(env.reply(reply));
        None
    }

    fn debug_crash(&mut self, service: &str, requested_by: &str) -> Option<Msg> {
        let actor = self.registry.find_service(service)?;
        let cmd = PeerCmd::Crash {
            requested_by: requested_by.to_string(),
        };
        Some(match actor.try_send(Command(cmd)) {
            Ok(()) => Msg::Success(Some(format!("crash injected into {service}"))),
            Err(_) => Msg::failure(code::BUSY, "the peer's mailbox is full; retry"),
        })
    }

    fn gone(&mut self, service: &ServiceId) {
        self.registry.unsubscribe(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port() {
        assert_eq!(with_default_port("127.0.0.1"), "127.0.0.1:9735");
        assert_eq!(with_default_port("127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(with_default_port("[::1]"), "[::1]:9735");
        assert_eq!(with_default_port("[::1]:5"), "[::1]:5");
        assert_eq!(with_default_port("example.com"), "example.com:9735");
    }
}
