//! `nodectl`: starts a node (`nodectl start --node lnp|bp|rgb|storm`) or talks to a running one
//! (`nodectl <node> info`, ...). Every failure, a bad argument included, prints one line and
//! exits with code 1 (2 is kept for a node stopped by escalation); nothing panics.
//!
//! - `start`: settings, data dir, the node's root.
//! - `client`: the shared API client (connect, request, timeout, progress, subscriptions) and
//!   argument validation.
//! - `render`: shared rendering (human and `--json`).
//! - `common`, `lnp`, `bp`, `rgb`, `storm`: the commands, one file per node; each command declares its
//!   request, its timeout and its rendering.

#[path = "nodectl/bp.rs"]
mod bp;
#[path = "nodectl/client.rs"]
mod client;
#[path = "nodectl/common.rs"]
mod common;
#[path = "nodectl/lnp.rs"]
mod lnp;
#[path = "nodectl/render.rs"]
mod render;
#[path = "nodectl/rgb.rs"]
mod rgb;
#[path = "nodectl/start.rs"]
mod start;
#[path = "nodectl/storm.rs"]
mod storm;

use clap::{Parser, Subcommand};
use client::ClientArgs;
use std::process::ExitCode;

/// Exit code of every failure other than an escalation (2).
pub const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "nodectl",
    version,
    about = "Run and control LNP/BP nodes (LNP, BP, RGB, Storm)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a node in the foreground until SIGINT or SIGTERM.
    Start(Box<start::StartArgs>),
    /// Talk to a running LNP node.
    Lnp(ClientArgs<lnp::LnpCmd>),
    /// Talk to a running BP node.
    Bp(ClientArgs<bp::BpCmd>),
    /// Talk to a running RGB node.
    Rgb(ClientArgs<rgb::RgbCmd>),
    /// Talk to a running Storm node.
    Storm(ClientArgs<storm::StormCmd>),
    /// This client's key for remote nodes (--remote).
    Key {
        #[command(subcommand)]
        cmd: common::KeyCmd,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.cmd {
        Cmd::Start(args) => start::start(*args),
        Cmd::Lnp(a) => lnp::run(a).map(|()| ExitCode::SUCCESS),
        Cmd::Bp(a) => bp::run(a).map(|()| ExitCode::SUCCESS),
        Cmd::Rgb(a) => rgb::run(a).map(|()| ExitCode::SUCCESS),
        Cmd::Storm(a) => storm::run(a).map(|()| ExitCode::SUCCESS),
        Cmd::Key { cmd } => common::key(&cmd).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nodectl: error: {}", one_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `--help` and `--version` print and succeed; any other argument error is one line and
/// exit code 1 (clap's own would be several lines and 2, which we keep for escalation).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            let code = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_FAILURE
            } else {
                0
            };
            ExitCode::from(code)
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("nodectl: error: {} (see --help)", one_line(first));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `text` on one line: line breaks become spaces.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks the whole command tree (ids unique with the global flags, e.g. `--key`
    /// against a positional `key`): a clash would panic at run time on that command.
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every command parses into its arguments without a panic: each leaf command with a
    /// placeholder for every required positional, with and without the global flags. (clap
    /// panics while filling the arguments when a positional shares its id with a global flag.)
    #[test]
    fn every_command_parses_without_a_panic() {
        use clap::CommandFactory;
        fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
            if cmd.get_subcommands().next().is_none() {
                let mut argv = path.clone();
                for a in cmd.get_positionals().filter(|a| a.is_required_set()) {
                    let _ = a;
                    argv.push("00".into());
                }
                out.push(argv);
                return;
            }
            for sub in cmd.get_subcommands() {
                let mut p = path.clone();
                p.push(sub.get_name().to_string());
                leaves(sub, p, out);
            }
        }
        let mut all = Vec::new();
        leaves(&Cli::command(), vec!["nodectl".into()], &mut all);
        assert!(all.len() > 50, "{} commands", all.len());
        for argv in all {
            let with_globals: Vec<String> = argv
                .iter()
                .cloned()
                .chain(["--key", "/tmp/k", "--json"].map(String::from))
                .collect();
            for a in [&argv, &with_globals] {
                let _ = Cli::try_parse_from(a);
            }
        }
    }
}
