//! `nodectl storm …`: the Storm Node's commands (the STORE tables, containers, apps).
//!
//! Every command talks to the node's API endpoint: STORE requests go to `stored`, container
//! and app requests to `stormd` (docs/API.md, "Storm requests").

use crate::client::{self, node_id_arg, ClientArgs, Request, Session};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, unexpected};
use clap::{Args, Subcommand};
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::api::storm::StormMsg;
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::storm::container::{container_id_bech32, parse_container_id, ContainerId};
use std::path::PathBuf;

#[path = "storm/chat.rs"]
mod chat;
#[path = "storm/containers.rs"]
mod containers;
#[path = "storm/store.rs"]
mod store;
#[path = "storm/transfers.rs"]
mod transfers;

/// The Storm commands.
#[derive(Subcommand)]
pub enum StormCmd {
    #[command(flatten)]
    Common(CommonCmd),
    /// The STORE: tables of 32-byte keys (64 hex digits) to values.
    Store {
        #[command(subcommand)]
        cmd: StoreCmd,
    },
    /// Split FILE into chunks, store them and make a container; prints its id.
    Containerize(ContainerizeArgs),
    /// Check every chunk of a container and write its content to OUT.
    Assemble {
        /// Container id: 64 hex digits or storm1…
        id: String,
        /// Output file (written only when every chunk checked out).
        out: PathBuf,
    },
    /// List the containers.
    Containers,
    /// List the apps registered on the STORM bus.
    Apps,
    /// Chat with the Storm nodes of Bifrost peers (needs a node started with --lnp).
    Chat {
        #[command(subcommand)]
        cmd: ChatCmd,
    },
    /// Offer a stored container to the Storm node of a peer (its LNP node's id); the peer
    /// downloads it once it accepts.
    Send {
        /// The peer's node id (66 hex digits).
        node_id: String,
        /// Container id: 64 hex digits or storm1…
        id: String,
        /// The Storm app it is meant for (decimal or 0x hex; 2 is file transfer).
        #[arg(long, default_value = "2", value_parser = app_arg)]
        app: u16,
    },
    /// Accept a container a peer offered: it downloads in the background.
    Accept {
        /// Container id: 64 hex digits or storm1…
        id: String,
    },
    /// The containers offered to us, the downloads, and the containers we shared.
    Transfers,
    /// The state of a download; with --wait, follow it to its end (a progress bar on a
    /// terminal; with --json, one object per change).
    Download {
        /// Container id: 64 hex digits or storm1…
        id: String,
        /// Wait until the container is received (or the download fails).
        #[arg(long)]
        wait: bool,
    },
}

/// Chat commands.
#[derive(Subcommand)]
pub enum ChatCmd {
    /// Send TEXT to the Storm node of a peer (its LNP node's id).
    Send {
        /// The peer's node id (66 hex digits).
        node_id: String,
        /// The text.
        text: String,
    },
    /// Print chat messages as they arrive, until interrupted.
    Listen,
    /// The messages exchanged with a peer, oldest first.
    History {
        /// The peer's node id.
        node_id: String,
    },
}

/// `containerize` arguments.
#[derive(Args)]
pub struct ContainerizeArgs {
    /// The file.
    file: PathBuf,
    /// MIME type of the content.
    #[arg(long, default_value = "application/octet-stream")]
    mime: String,
    /// Description.
    #[arg(long, default_value = "")]
    info: String,
}

/// STORE commands.
#[derive(Subcommand)]
pub enum StoreCmd {
    /// Every table with its number of keys.
    Tables,
    /// Number of keys in TABLE.
    Count {
        /// Table name (1 to 64 bytes of a-z 0-9 _ - .).
        table: String,
    },
    /// Every key of TABLE, in order.
    List {
        /// Table name.
        table: String,
    },
    /// Store a value (from FILE, or stdin) under KEY; answered once committed.
    Put {
        /// Table name.
        table: String,
        /// Key: 64 hex digits.
        #[arg(value_name = "KEY")]
        table_key: String,
        /// File with the value (default: stdin).
        file: Option<PathBuf>,
    },
    /// Write the value under KEY to stdout (raw bytes), or to --out FILE.
    Get {
        /// Table name.
        table: String,
        /// Key: 64 hex digits.
        #[arg(value_name = "KEY")]
        table_key: String,
        /// Write the value to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Remove KEY.
    Delete {
        /// Table name.
        table: String,
        /// Key: 64 hex digits.
        #[arg(value_name = "KEY")]
        table_key: String,
    },
}

/// Runs a Storm command.
pub fn run(args: ClientArgs<StormCmd>) -> Result<(), String> {
    let kind = NodeKind::Storm;
    let req = match &args.cmd {
        StormCmd::Common(cmd) => return common::run(kind, &args, cmd),
        StormCmd::Store { cmd } => return store::store(&args, cmd),
        StormCmd::Containerize(c) => return containers::containerize(&args, c),
        StormCmd::Assemble { id, out } => return containers::assemble(&args, id, out),
        StormCmd::Containers => {
            Request::new(StormMsg::Containers, Box::new(containers::containers))
        }
        StormCmd::Apps => Request::new(StormMsg::Apps, Box::new(containers::apps)),
        StormCmd::Chat {
            cmd: ChatCmd::Listen,
        } => return chat::chat_listen(&args),
        StormCmd::Chat {
            cmd: ChatCmd::Send { node_id, text },
        } => Request::new(
            StormMsg::ChatSend {
                node_id: node_id_arg(node_id)?,
                text: chat::chat_text_arg(text)?,
            },
            Box::new(render::success),
        )
        .slow(),
        StormCmd::Chat {
            cmd: ChatCmd::History { node_id },
        } => Request::new(
            StormMsg::ChatHistory {
                node_id: node_id_arg(node_id)?,
            },
            Box::new(chat::chat_history),
        ),
        StormCmd::Send { node_id, id, app } => {
            let (peer, container_id) = (node_id_arg(node_id)?, container_arg(id)?);
            Request::new(
                StormMsg::SendContainer {
                    node_id: peer,
                    container_id,
                    app: *app,
                },
                Box::new(move |reply, json| {
                    let Msg::Success(_) = reply else {
                        return Err(unexpected(&reply));
                    };
                    if json {
                        emit!(
                            "{}",
                            serde_json::json!({"ok": true, "container_id": hex(container_id),
                                "peer": hex(peer), "state": "shared"})
                        );
                    } else {
                        emit!(
                            "offered {} to {}: it downloads once the peer accepts",
                            container_id_bech32(&container_id),
                            hex(peer)
                        );
                    }
                    Ok(())
                }),
            )
            .slow()
        }
        StormCmd::Accept { id } => Request::new(
            StormMsg::AcceptContainer(container_arg(id)?),
            Box::new(render::success),
        ),
        StormCmd::Transfers => Request::new(StormMsg::Transfers, Box::new(transfers::transfers)),
        StormCmd::Download { id, wait } => {
            let id = container_arg(id)?;
            return if *wait {
                transfers::download_wait(&args, id)
            } else {
                transfers::download(&args, id)
            };
        }
    };
    client::run(kind, &args, req)
}

fn session(args: &ClientArgs<StormCmd>) -> Result<Session, String> {
    Session::open(NodeKind::Storm, args, BusKind::Api, client::TIMEOUT)
}

/// A Storm app id: decimal or 0x hex.
fn app_arg(text: &str) -> Result<u16, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{}` is not an app id (0 to 65535)", client::shown(text)))
}

fn container_arg(id: &str) -> Result<ContainerId, String> {
    parse_container_id(id).map_err(|e| format!("`{}`: {e}", client::shown(id)))
}
