//! The Storm requests of `stormd` (an [`Extension`] of the node manager, on every bus of the
//! node), each handed to what serves it:
//!
//! - containers (`containerize`, `assemble`, `containers`, `get_container`): [`super::containers`];
//! - the apps of the STORM bus (`register_app`, `app_send`, `apps`): [`super::apps`];
//! - chat (`chat_send`, `chat_subscribe`, `chat_history`): [`super::chat`], and the link for
//!   sending;
//! - peers and transfers (`app_send_to`, `send_container`, `accept_container`, `transfers`,
//!   `transfer_subscribe`): the link thread ([`super::link`]), which answers them.
//!
//! Nothing else imports this file: it only maps requests to handlers.

use super::apps::Apps;
use super::chat::Chat;
use super::containers::{self, Jobs};
use super::link::{Link, LinkCmd};
use crate::actors::manager::Extension;
use crate::bus::{Bus, Deliver, Subscriber};
use crate::storage::Storage;
use crate::wire::api::storm::StormMsg;
use crate::wire::api::{code, Envelope, Msg, ServiceId};
use crate::wire::limits::MAX_CONTAINER_CHUNKS;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::Container;
use crate::wire::storm::p2p::StormP2p;
use std::sync::Arc;

/// What every incarnation of the extension works with (the manager is rebuilt on restart).
pub struct StormState {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// The apps of the STORM bus.
    pub apps: Arc<Apps>,
    /// The chat (STORE table `chat`, listeners).
    pub chat: Arc<Chat>,
    /// The link thread (transfers, and the LNP node if the node joined one).
    pub link: Arc<Link>,
    /// The container checks running.
    pub jobs: Arc<Jobs>,
}

/// The extension.
pub struct Stormd {
    state: Arc<StormState>,
}

impl Stormd {
    /// The extension over `state`, shared across restarts.
    pub fn new(state: Arc<StormState>) -> Stormd {
        Stormd { state }
    }

    /// Sends a Storm message to a peer through the link, which answers the request (`None`),
    /// or the failure to answer with now.
    fn peer_send(&self, peer: NodeId, msg: StormP2p, bus: &Bus, env: &Envelope) -> Option<Msg> {
        let link = &self.state.link;
        if !link.joined() {
            return Some(no_link());
        }
        link.send(peer, msg, None, (bus.clone(), env.clone()))
            .err()
            .map(|why| Msg::failure(code::PEER_FAILED, why))
    }

    /// Hands a transfer request to the link thread, which answers it (`None`), or the failure
    /// to answer with now.
    fn link_command(&self, cmd: LinkCmd) -> Option<Msg> {
        self.state
            .link
            .command(cmd)
            .err()
            .map(|why| Msg::failure(code::SERVICE_FAILED, why))
    }
}

fn no_link() -> Msg {
    Msg::failure(
        code::REFUSED,
        "this Storm node joined no LNP node (start it with --lnp ENDPOINT)",
    )
}

impl Extension for Stormd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = &d;
        let Msg::Storm(op) = &env.msg else {
            return Some(d);
        };
        let s = &self.state;
        let reply = (bus.clone(), env.clone());
        let answer = match op {
            StormMsg::Containerize { header, chunks } => {
                if chunks.len() > MAX_CONTAINER_CHUNKS {
                    Msg::failure(code::TOO_LARGE, "too many chunks")
                } else {
                    let c = Container {
                        header: header.clone(),
                        chunks: chunks.clone(),
                    };
                    // `None`: the job answers.
                    let store = s.storage.clone();
                    s.jobs
                        .spawn(store, bus, env, move |st| containers::containerize(st, c))?
                }
            }
            StormMsg::Assemble(id) => {
                let id = *id;
                // `None`: the job answers.
                let store = s.storage.clone();
                s.jobs
                    .spawn(store, bus, env, move |st| containers::assemble(st, id))?
            }
            StormMsg::Containers => match containers::list(&*s.storage) {
                Ok(list) => StormMsg::ContainerList(list).into(),
                Err(e) => e.into(),
            },
            StormMsg::GetContainer(id) => match containers::load(&*s.storage, id) {
                Ok(Some(container)) => StormMsg::ContainerData { id: *id, container }.into(),
                Ok(None) => containers::not_found(id).into(),
                Err(e) => e.into(),
            },
            StormMsg::RegisterApp { app, name } => {
                match s.apps.register(*app, name, Subscriber::of(bus, env)) {
                    Ok(text) => Msg::Success(Some(text)),
                    Err(e) => e.into(),
                }
            }
            StormMsg::AppSend { app, payload } => {
                let msg = StormMsg::AppMessage {
                    app: *app,
                    from: env.src.to_string(),
                    payload: payload.clone(),
                };
                if s.apps.deliver(*app, msg) {
                    Msg::Success(Some(format!("delivered to app {app:#06x}")))
                } else {
                    Msg::failure(
                        code::NOT_FOUND,
                        format!("no app registered with id {app:#06x}"),
                    )
                }
            }
            StormMsg::Apps => StormMsg::AppList(s.apps.list()).into(),
            StormMsg::ChatSend { node_id, text } if s.link.joined() => {
                match s.link.chat(*node_id, text.clone(), reply) {
                    Ok(()) => return None, // the link answers
                    Err(why) => Msg::failure(code::PEER_FAILED, why),
                }
            }
            StormMsg::ChatSend { .. } => no_link(),
            StormMsg::ChatSubscribe => match s.chat.listen(Subscriber::of(bus, env)) {
                Ok(()) => Msg::Success(Some("listening for chat messages".into())),
                Err(e) => Msg::failure(code::BUSY, e),
            },
            StormMsg::ChatHistory { node_id } => match s.chat.history(node_id) {
                Ok(list) => StormMsg::ChatList(list).into(),
                Err(e) => Msg::failure(code::SERVICE_FAILED, e),
            },
            StormMsg::AppSendTo {
                node_id,
                app,
                payload,
            } => {
                let post = StormP2p::post(*app, payload.clone());
                // `None`: the link answers.
                self.peer_send(*node_id, post, bus, env)?
            }
            StormMsg::SendContainer {
                node_id,
                container_id,
                app,
            } => {
                if !s.link.joined() {
                    no_link()
                } else if !s.link.reachable() {
                    Msg::failure(code::PEER_FAILED, s.link.unreachable())
                } else {
                    let cmd = LinkCmd::Share {
                        peer: *node_id,
                        container: *container_id,
                        app: *app,
                        reply,
                    };
                    // `None`: the link answers.
                    self.link_command(cmd)?
                }
            }
            StormMsg::AcceptContainer(container) if s.link.joined() => {
                let cmd = LinkCmd::Accept {
                    container: *container,
                    reply,
                };
                self.link_command(cmd)?
            }
            StormMsg::AcceptContainer(_) => no_link(),
            StormMsg::Transfers => self.link_command(LinkCmd::List { reply })?,
            StormMsg::TransferSubscribe(container) => {
                let cmd = LinkCmd::Subscribe {
                    sub: Subscriber::of(bus, env),
                    container: *container,
                    reply,
                };
                self.link_command(cmd)?
            }
            _ => return Some(d),
        };
        bus.send(env.reply(answer));
        None
    }

    fn debug_crash(&mut self, _: &str, _: &str) -> Option<Msg> {
        None
    }

    fn gone(&mut self, service: &ServiceId) {
        self.state.chat.forget(service);
        let _ = self.state.link.command(LinkCmd::Forget(service.clone()));
        self.state.apps.forget(service);
    }
}
