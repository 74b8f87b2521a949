//! `nodectl rgb …`: the RGB Node's commands (contracts: issue, import, list, state, export,
//! send through a Storm node, listen for contracts received). docs/API.md, "RGB requests".

use crate::client::{self, node_id_arg, read_bounded, text_arg, ClientArgs, Request, Session};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, unexpected};
use clap::{Subcommand, ValueEnum};
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::wire::api::rgb::{ContractState, NiaIssue, Received, RgbMsg, MAX_ID_TEXT};
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::limits::MAX_CONSIGNMENT;
use std::path::PathBuf;

/// Contract schemas `issue` knows.
#[derive(Clone, Copy, ValueEnum)]
pub enum Schema {
    /// Non-inflatable asset (RGB20 NIA): a fixed supply on one seal.
    Nia,
}

/// The RGB commands.
#[derive(Subcommand)]
pub enum RgbCmd {
    #[command(flatten)]
    Common(CommonCmd),
    /// Issue a contract (for tests and test networks); prints its contract id.
    Issue {
        /// The schema.
        #[arg(long, value_enum, default_value = "nia")]
        schema: Schema,
        /// Ticker: 1 to 8 letters and digits, a letter first.
        #[arg(long)]
        ticker: String,
        /// Name: 1 to 40 printable ASCII characters.
        #[arg(long)]
        name: String,
        /// Decimal places, 0 to 18.
        #[arg(long, default_value = "0")]
        precision: u8,
        /// The whole supply, in the smallest unit.
        #[arg(long)]
        supply: u64,
        /// The seal holding the supply: TXID:VOUT.
        #[arg(long)]
        seal: String,
    },
    /// Validate a consignment file (binary RGB\0CON… or ASCII-armored) and import it.
    Import {
        /// The consignment.
        file: PathBuf,
    },
    /// The ids of every contract.
    Contracts,
    /// A contract's ticker, name, precision, issued supply and allocations by seal.
    State {
        /// Contract id (rgb:…).
        contract_id: String,
    },
    /// Write a contract's consignment to OUT (binary, or --armored).
    Export {
        /// Contract id (rgb:…).
        contract_id: String,
        /// Output file.
        out: PathBuf,
        /// ASCII armor instead of the binary form.
        #[arg(long)]
        armored: bool,
    },
    /// Send a contract to a node (its LNP node's id) through the Storm node this RGB node is
    /// attached to (--storm).
    Send {
        /// The receiving node's id (66 hex digits).
        node_id: String,
        /// Contract id (rgb:…).
        contract_id: String,
    },
    /// Print the contracts received from peers as they arrive (with the validation outcome),
    /// until interrupted.
    Listen,
}

fn id_arg(id: &str) -> Result<String, String> {
    text_arg("the contract id", id, MAX_ID_TEXT)
}

/// Runs an RGB command.
pub fn run(args: ClientArgs<RgbCmd>) -> Result<(), String> {
    let kind = NodeKind::Rgb;
    let req = match &args.cmd {
        RgbCmd::Common(cmd) => return common::run(kind, &args, cmd),
        RgbCmd::Issue {
            schema: Schema::Nia,
            ticker,
            name,
            precision,
            supply,
            seal,
        } => Request::new(
            RgbMsg::Issue(NiaIssue {
                ticker: text_arg("the ticker", ticker, 8)?,
                name: name_arg(name)?,
                precision: *precision,
                supply: *supply,
                seal: text_arg("the seal", seal, MAX_ID_TEXT)?,
            }),
            Box::new(issued),
        )
        .slow(),
        RgbCmd::Import { file } => {
            let f = std::fs::File::open(file)
                .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
            let bytes = read_bounded(f, MAX_CONSIGNMENT, "the consignment")?;
            Request::new(RgbMsg::Import(bytes), Box::new(imported)).slow()
        }
        RgbCmd::Contracts => Request::new(RgbMsg::Contracts, Box::new(contracts)),
        RgbCmd::State { contract_id } => {
            Request::new(RgbMsg::State(id_arg(contract_id)?), Box::new(state))
        }
        RgbCmd::Export {
            contract_id,
            out,
            armored,
        } => {
            let (out, armored) = (out.clone(), *armored);
            let id = id_arg(contract_id)?;
            let shown = id.clone();
            Request::new(
                RgbMsg::Export {
                    contract_id: id,
                    armored,
                },
                Box::new(move |reply, json| exported(reply, json, &shown, &out, armored)),
            )
        }
        RgbCmd::Send {
            node_id,
            contract_id,
        } => Request::new(
            RgbMsg::SendContract {
                node_id: node_id_arg(node_id)?,
                contract_id: id_arg(contract_id)?,
            },
            Box::new(render::success),
        )
        .slow(),
        RgbCmd::Listen => return listen(&args),
    };
    client::run(kind, &args, req)
}

/// A contract name: 1 to 40 printable ASCII characters (spaces allowed).
fn name_arg(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 40 || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "the name `{}` must be 1 to 40 printable ASCII characters",
            client::shown(name)
        ));
    }
    Ok(name.to_string())
}

fn issued(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Rgb(RgbMsg::Issued(id)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", serde_json::json!({ "contract_id": id }));
    } else {
        emit!("{id}");
    }
    Ok(())
}

fn imported(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Rgb(RgbMsg::Imported(v)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!(
            "{}",
            serde_json::json!({ "contract_id": v.contract_id, "valid": true, "warnings": v.warnings })
        );
    } else {
        emit!("imported {} (valid)", v.contract_id);
        for w in &v.warnings {
            emit!("warning: {w}");
        }
    }
    Ok(())
}

fn contracts(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Rgb(RgbMsg::ContractList(ids)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", serde_json::json!(ids));
    } else if ids.is_empty() {
        emit!("no contracts");
    } else {
        for id in &ids {
            emit!("{id}");
        }
    }
    Ok(())
}

fn state_json(s: &ContractState) -> serde_json::Value {
    serde_json::json!({
        "contract_id": s.contract_id, "ticker": s.ticker, "name": s.name,
        "precision": s.precision, "issued": s.issued,
        "allocations": s.allocations.iter()
            .map(|(seal, amount)| serde_json::json!({ "seal": seal, "amount": amount }))
            .collect::<Vec<_>>(),
    })
}

fn state(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Rgb(RgbMsg::ContractState(s)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", state_json(&s));
    } else {
        emit!("contract   {}", s.contract_id);
        emit!("ticker     {}", s.ticker);
        emit!("name       {}", s.name);
        emit!("precision  {}", s.precision);
        emit!("issued     {}", s.issued);
        for (seal, amount) in &s.allocations {
            emit!("allocation {amount} on {seal}");
        }
    }
    Ok(())
}

fn exported(reply: Msg, json: bool, id: &str, out: &PathBuf, armored: bool) -> Result<(), String> {
    let Msg::Rgb(RgbMsg::Exported(bytes)) = reply else {
        return Err(unexpected(&reply));
    };
    std::fs::write(out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    if json {
        emit!(
            "{}",
            serde_json::json!({ "contract_id": id, "file": out.display().to_string(),
                "bytes": bytes.len(), "armored": armored })
        );
    } else {
        emit!("wrote {} bytes to {}", bytes.len(), out.display());
    }
    Ok(())
}

fn received_json(r: &Received) -> serde_json::Value {
    serde_json::json!({
        "event": "contract_received", "from": hex(r.from), "container_id": hex(r.container_id),
        "valid": r.valid, "contract_id": r.contract_id, "reasons": r.reasons,
    })
}

fn listen(args: &ClientArgs<RgbCmd>) -> Result<(), String> {
    let mut s = Session::open(NodeKind::Rgb, args, BusKind::Api, client::TIMEOUT)?;
    let json = args.json;
    s.follow(RgbMsg::ContractSubscribe.into(), json, |env| {
        let Msg::Rgb(RgbMsg::ContractReceived(r)) = &env.msg else {
            return false;
        };
        if json {
            emit!("{}", received_json(r));
        } else if r.valid {
            emit!(
                "received {} from {}: valid, imported",
                r.contract_id,
                hex(r.from)
            );
        } else {
            emit!(
                "received a contract from {}: refused: {}",
                hex(r.from),
                r.reasons.join("; ")
            );
        }
        true
    })
}
