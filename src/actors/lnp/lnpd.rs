//! The LNP requests of `lnpd` (an [`Extension`] of the node manager): `listen`, `connect`,
//! `disconnect`, `peers`, `ping`, and on the MSG bus `subscribe_peer_messages` and
//! `send_peer_message`. Long requests are answered by the `peerd` they concern.

use super::bifrostd::BifrostCmd;
use super::peerd::{PeerCmd, Peerd};
use super::peers::{PeerActor, Registry};
use crate::actors::conn::Command;
use crate::actors::manager::Extension;
use crate::bus::Deliver;
use crate::wire::api::lnp::{LnpMsg, Protocol};
use crate::wire::api::{code, Msg, ServiceId};
use crate::wire::ln::bolt1::msg_type;
use crate::wire::node_id::NodeId;
use std::sync::Arc;

/// Port of `connect` addresses given without one (BOLT-1's default).
pub const DEFAULT_PORT: u16 = 9735;
/// Port of Bifrost `connect` addresses given without one (the seed's, lnp-core's).
pub const BIFROST_PORT: u16 = 9999;

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

/// `host` → `host:port`; `host:port` and `[v6]:port` unchanged.
pub fn with_port(addr: &str, port: u16) -> String {
    let has_port = match addr.rfind(']') {
        Some(close) => addr[close..].contains(':'),
        None => addr.contains(':'),
    };
    if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{port}")
    }
}

/// `host` → `host:9735` (BOLT-1's port).
pub fn with_default_port(addr: &str) -> String {
    with_port(addr, DEFAULT_PORT)
}

impl Extension for Lnpd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = &d;
        let not_found = |id: &NodeId, p: Protocol| {
            Msg::failure(
                code::NOT_FOUND,
                format!("not connected to {id} over {}", p.name()),
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
                Ok(sa) => match self.registry.bind(&sa.to_string(), Protocol::Lightning) {
                    Ok(local) => LnpMsg::Listening {
                        addr: local.to_string(),
                    }
                    .into(),
                    Err(e) => Msg::failure(code::REFUSED, e),
                },
            },
            Msg::Lnp(LnpMsg::Connect {
                node_id,
                addr,
                protocol,
            }) => match node_id.public_key() {
                None => Msg::failure(code::INVALID_ARGUMENT, "the node id is not a public key"),
                Some(remote) => {
                    let port = match protocol {
                        Protocol::Lightning => DEFAULT_PORT,
                        Protocol::Bifrost => BIFROST_PORT,
                    };
                    let addr = with_port(addr, port);
                    self.registry
                        .connect(*protocol, remote, addr, (bus.clone(), env.clone()));
                    return None; // the connection answers
                }
            },
            Msg::Lnp(LnpMsg::Disconnect { node_id, protocol }) => {
                match self.registry.find(node_id, *protocol) {
                    Some(actor) => {
                        let reason = format!("disconnect requested by {}", env.src);
                        if actor.disconnect(reason, Some((bus.clone(), env.clone()))) {
                            return None; // the connection answers once it has left
                        }
                        Msg::failure(code::BUSY, "the peer's mailbox is full; retry")
                    }
                    None => not_found(node_id, *protocol),
                }
            }
            Msg::Lnp(LnpMsg::ListPeers) => LnpMsg::PeerList(self.registry.list()).into(),
            Msg::Lnp(LnpMsg::PingPeer {
                node_id,
                num_pong_bytes,
                protocol,
            }) => match self.registry.find(node_id, *protocol) {
                Some(actor) => {
                    if actor.ping(bus.clone(), env.clone(), *num_pong_bytes) {
                        return None; // the connection answers
                    }
                    Msg::failure(code::BUSY, "the peer's mailbox is full; retry")
                }
                None => not_found(node_id, *protocol),
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
            Msg::Lnp(LnpMsg::SubscribeBifrostApps { apps }) => {
                match self.registry.subscribe_apps(bus.clone(), env, apps.clone()) {
                    Ok(()) => Msg::Success(Some(format!(
                        "forwarding {} Bifrost app(s) to {}",
                        apps.len(),
                        env.src
                    ))),
                    Err(e) => Msg::failure(code::BUSY, e),
                }
            }
            Msg::Lnp(LnpMsg::SendBifrostApp(m)) => {
                match self.registry.find(&m.node_id, Protocol::Bifrost) {
                    Some(PeerActor::Bifrost(actor)) => {
                        let cmd = BifrostCmd::SendApp {
                            bus: bus.clone(),
                            env: env.clone(),
                            app: m.app,
                            payload: m.payload.clone(),
                        };
                        match actor.try_send(Command(cmd)) {
                            Ok(()) => return None, // the connection answers
                            Err(_) => Msg::failure(code::BUSY, "the peer's mailbox is full; retry"),
                        }
                    }
                    _ => not_found(&m.node_id, Protocol::Bifrost),
                }
            }
            Msg::Lnp(LnpMsg::SendPeerMessage(m)) => {
                if [msg_type::INIT, msg_type::PING, msg_type::PONG].contains(&m.type_id) {
                    Msg::failure(
                        code::REFUSED,
                        format!("type {} is handled by peerd itself", m.type_id),
                    )
                } else {
                    match self.registry.find_lightning(&m.node_id) {
                        Some(actor) => {
                            let cmd = PeerCmd::Send {
                                bus: bus.clone(),
                                env: env.clone(),
                                msg: m.clone(),
                            };
                            send(actor, cmd)?
                        }
                        None => not_found(&m.node_id, Protocol::Lightning),
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
        Some(if actor.crash(requested_by.to_string()) {
            Msg::Success(Some(format!("crash injected into {service}")))
        } else {
            Msg::failure(code::BUSY, "the peer's mailbox is full; retry")
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
