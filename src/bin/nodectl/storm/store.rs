//! `nodectl storm store …`: the STORE tables (`stored`).

use super::{session, StoreCmd, StormCmd};
use crate::client::{self, ClientArgs};
use crate::render;

use crate::client::{hex_arg, read_bounded};
use crate::render::{emit, hex, unexpected};
use lnpbp_nodes::storage::check_table;
use lnpbp_nodes::storage::stored_id;
use lnpbp_nodes::wire::api::storm::{Key, StormMsg};
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::limits::{MAX_IDS, MAX_VALUE};
use std::io::Write;

pub(super) fn table_arg(t: &str) -> Result<String, String> {
    check_table(t).map_err(|e| e.to_string())?;
    Ok(t.to_string())
}

pub(super) fn key_arg(k: &str) -> Result<Key, String> {
    let bytes = hex_arg("the key", k)?;
    bytes
        .try_into()
        .map_err(|_| format!("the key `{}` is not 64 hex digits", client::shown(k)))
}

/// Reads at most `max` bytes from `r`; more is an error, not a truncation.
pub(super) fn store(args: &ClientArgs<StormCmd>, cmd: &StoreCmd) -> Result<(), String> {
    let json = args.json;
    // Validate every argument before connecting.
    let msg: StormMsg = match cmd {
        StoreCmd::Tables => StormMsg::Tables,
        StoreCmd::Count { table } => StormMsg::Count {
            table: table_arg(table)?,
        },
        StoreCmd::List { table } => {
            let table = table_arg(table)?;
            return list(args, table);
        }
        StoreCmd::Put {
            table,
            table_key: key,
            file,
        } => {
            let (table, key) = (table_arg(table)?, key_arg(key)?);
            let value = match file {
                Some(path) => {
                    let f = std::fs::File::open(path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                    read_bounded(f, MAX_VALUE, &path.display().to_string())?
                }
                None => read_bounded(std::io::stdin().lock(), MAX_VALUE, "stdin")?,
            };
            StormMsg::Put { table, key, value }
        }
        StoreCmd::Get {
            table,
            table_key: key,
            ..
        } => StormMsg::Get {
            table: table_arg(table)?,
            key: key_arg(key)?,
        },
        StoreCmd::Delete {
            table,
            table_key: key,
        } => StormMsg::Delete {
            table: table_arg(table)?,
            key: key_arg(key)?,
        },
    };
    let mut s = session(args)?;
    let reply = s.request_to(&stored_id(), msg.into())?;
    match (cmd, reply) {
        (StoreCmd::Tables, Msg::Storm(StormMsg::TableList(list))) => {
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| serde_json::json!({"table": t.name, "count": t.count}))
                    .collect();
                emit!("{}", serde_json::Value::Array(v));
            } else if list.is_empty() {
                emit!("no tables");
            } else {
                for t in list {
                    emit!("{} {}", t.name, t.count);
                }
            }
        }
        (StoreCmd::Count { table }, Msg::Storm(StormMsg::Counted(n))) => {
            if json {
                emit!("{}", serde_json::json!({"table": table, "count": n}));
            } else {
                emit!("{n}");
            }
        }
        (
            StoreCmd::Get {
                out,
                table_key: key,
                ..
            },
            Msg::Storm(StormMsg::Value(v)),
        ) => match out {
            Some(path) => {
                std::fs::write(path, &v)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                if json {
                    emit!(
                        "{}",
                        serde_json::json!({"key": key, "size": v.len(), "out": path})
                    );
                }
            }
            None if json => emit!(
                "{}",
                serde_json::json!({"key": key, "size": v.len(), "value_hex": hex(&v)})
            ),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&v)
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write to stdout: {e}"))?;
            }
        },
        (_, reply @ Msg::Success(_)) => render::success(reply, json)?,
        (_, reply) => return Err(unexpected(&reply)),
    }
    Ok(())
}

pub(super) fn list(args: &ClientArgs<StormCmd>, table: String) -> Result<(), String> {
    let mut s = session(args)?;
    let mut after = None;
    let mut all = Vec::new();
    loop {
        let msg = StormMsg::ListIds {
            table: table.clone(),
            after,
            limit: MAX_IDS as u16,
        };
        let Msg::Storm(StormMsg::IdList { ids, more }) = s.request_to(&stored_id(), msg.into())?
        else {
            return Err("unexpected reply to list_ids".into());
        };
        after = ids.last().copied();
        if args.json {
            all.extend(ids.iter().map(hex));
        } else {
            for id in &ids {
                emit!("{}", hex(id));
            }
        }
        if !more || after.is_none() {
            break;
        }
    }
    if args.json {
        emit!("{}", serde_json::json!(all));
    }
    Ok(())
}
