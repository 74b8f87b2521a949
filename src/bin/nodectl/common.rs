//! The commands every node answers: `info`, `events`, `debug crash`.

use crate::client::{self, text_arg, ClientArgs, Request, Session};
use crate::render;
use clap::Subcommand;
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::limits::MAX_SERVICE_NAME;
use lnpbp_nodes::wire::msg::Msg;

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
