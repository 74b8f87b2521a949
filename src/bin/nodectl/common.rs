//! The commands every node answers: `info`, `events`, `debug crash`.

use crate::client::{self, text_arg, ClientArgs, Request, Session};
use crate::render;
use clap::Subcommand;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::limits::MAX_SERVICE_NAME;
use lnpbp_nodes::wire::node_id::NodeId;

/// The commands of every node.
#[derive(Subcommand)]
pub enum CommonCmd {
    /// Node kind, version, network, id, uptime, endpoints and services.
    Info,
    /// Print service events (restarts) as they happen, until interrupted.
    Events,
    /// Fault injection (node started with --fault-injection).
    Debug {
        #[command(subcommand)]
        cmd: DebugCmd,
    },
    /// The client keys allowed on the node's encrypted TCP buses (allow and revoke over the
    /// local API only; kept in the node's data dir).
    Rpc {
        #[command(subcommand)]
        cmd: RpcCmd,
    },
}

/// The allow-list of the node's TCP buses.
#[derive(Subcommand)]
pub enum RpcCmd {
    /// Allow a client key (66 hex digits, as `nodectl key show` prints it).
    Allow {
        /// The client's public key.
        #[arg(value_name = "KEY")]
        client: String,
    },
    /// Revoke a client key: its new sessions are refused.
    Revoke {
        /// The client's public key.
        #[arg(value_name = "KEY")]
        client: String,
    },
    /// The allowed keys.
    List,
}

/// This client's own key.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Print the public key of this client's key (created on first use) to put on a node's
    /// allow-list.
    Show {
        /// The key file (default ~/.config/nodectl/client.key).
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `nodectl key show`.
pub fn key(cmd: &KeyCmd) -> Result<(), String> {
    let KeyCmd::Show { key, json } = cmd;
    let (_, public) = client::client_key(key.as_ref())?;
    let path = client::key_path(key.as_ref())?;
    let hex = render::hex(public);
    if *json {
        render::emit!(
            "{}",
            serde_json::json!({ "key": hex, "file": path.display().to_string() })
        );
    } else {
        render::emit!("{hex}");
    }
    Ok(())
}

fn key_arg(text: &str) -> Result<NodeId, String> {
    NodeId::parse_key(text).map_err(|_| {
        format!(
            "`{}` is not a client key (66 hex digits of a public key)",
            client::shown(text)
        )
    })
}

fn key_list(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::RpcAllowList(keys) = reply else {
        return Err(render::unexpected(&reply));
    };
    let keys: Vec<String> = keys.iter().map(render::hex).collect();
    if json {
        render::emit!("{}", serde_json::json!(keys));
    } else if keys.is_empty() {
        render::emit!("no client keys allowed");
    } else {
        for k in &keys {
            render::emit!("{k}");
        }
    }
    Ok(())
}

/// Fault injection.
#[derive(Subcommand)]
pub enum DebugCmd {
    /// Make a service panic inside a handler.
    Crash {
        /// Service name as listed by `info`.
        service: String,
    },
}

/// Runs a common command against the node `kind`.
pub fn run<C: Subcommand>(
    kind: NodeKind,
    args: &ClientArgs<C>,
    cmd: &CommonCmd,
) -> Result<(), String> {
    let req = match cmd {
        CommonCmd::Info => Request::new(Msg::GetInfo, Box::new(render::info)),
        CommonCmd::Debug {
            cmd: DebugCmd::Crash { service },
        } => Request::new(
            Msg::DebugCrash {
                service: text_arg("the service name", service, MAX_SERVICE_NAME)?,
            },
            Box::new(render::success),
        ),
        CommonCmd::Rpc { cmd } => match cmd {
            RpcCmd::Allow { client } => {
                Request::new(Msg::RpcAllow(key_arg(client)?), Box::new(render::success))
            }
            RpcCmd::Revoke { client } => {
                Request::new(Msg::RpcRevoke(key_arg(client)?), Box::new(render::success))
            }
            RpcCmd::List => Request::new(Msg::RpcList, Box::new(key_list)),
        },
        CommonCmd::Events => {
            let mut s = Session::open(kind, args, BusKind::Api, client::TIMEOUT)?;
            let json = args.json;
            return s.follow(Msg::Subscribe, json, |env| match &env.msg {
                Msg::ServiceEvent(ev) => {
                    render::event(ev, json);
                    true
                }
                _ => false,
            });
        }
    };
    client::run(kind, args, req)
}
