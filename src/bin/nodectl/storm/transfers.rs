//! `nodectl storm transfers | download`: transfers, and a download followed to its end.

use super::{session, StormCmd};
use crate::client::{follow_error, ClientArgs, FOLLOW_QUIET};

use crate::render::{emit, hex, unexpected};
use lnpbp_nodes::storage::storm::StormError;
use lnpbp_nodes::wire::api::storm::{StormMsg, TransferInfo, TransferState};
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use lnpbp_nodes::wire::storm::container::{container_id_bech32, ContainerId};

pub(super) fn transfer_json(t: &TransferInfo, event: &str) -> serde_json::Value {
    serde_json::json!({
        "event": event,
        "container_id": hex(t.container_id),
        "id": container_id_bech32(&t.container_id),
        "peer": hex(t.peer),
        "app": t.app,
        "state": t.state.name(),
        "size": t.size,
        "chunks": t.chunks,
        "have": t.have,
        "had": t.had,
        "fetched": t.fetched,
        "served": t.served,
        "note": t.note,
    })
}

pub(super) fn transfer_line(t: &TransferInfo) -> String {
    let mut line = format!(
        "{} {} peer {} app {:#06x}: {} bytes",
        container_id_bech32(&t.container_id),
        t.state.name(),
        hex(t.peer),
        t.app,
        t.size
    );
    if t.state == TransferState::Shared {
        line += &format!(", {} chunks served", t.served);
    } else if t.chunks > 0 {
        line += &format!(", {}/{} chunks", t.have, t.chunks);
    }
    if !t.note.is_empty() {
        line += &format!(" ({})", t.note);
    }
    line
}

pub(super) fn transfers(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Storm(StormMsg::TransferList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list.iter().map(|t| transfer_json(t, "transfer")).collect();
        emit!("{}", serde_json::Value::Array(v));
    } else if list.is_empty() {
        emit!("no transfers");
    } else {
        for t in &list {
            emit!("{}", transfer_line(t));
        }
    }
    Ok(())
}

pub(super) fn download(args: &ClientArgs<StormCmd>, id: ContainerId) -> Result<(), String> {
    let mut s = session(args)?;
    let reply = s.request_to(&ServiceId::Stormd, StormMsg::Transfers.into())?;
    let Msg::Storm(StormMsg::TransferList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    let found = list
        .iter()
        .find(|t| t.container_id == id && t.state != TransferState::Shared);
    match found {
        Some(t) if args.json => emit!("{}", transfer_json(t, "transfer")),
        Some(t) => emit!("{}", transfer_line(t)),
        None => {
            let reply = s.request_to(&ServiceId::Stormd, StormMsg::GetContainer(id).into())?;
            let Msg::Storm(StormMsg::ContainerData { container, .. }) = reply else {
                return Err(format!(
                    "no download or offer of container {}",
                    container_id_bech32(&id)
                ));
            };
            if args.json {
                emit!(
                    "{}",
                    serde_json::json!({"event": "stored", "container_id": hex(id),
                        "id": container_id_bech32(&id), "state": "received",
                        "size": container.header.size})
                );
            } else {
                emit!("{} received", container_id_bech32(&id));
            }
        }
    }
    Ok(())
}

pub(super) fn download_wait(args: &ClientArgs<StormCmd>, id: ContainerId) -> Result<(), String> {
    use std::io::IsTerminal;
    let mut s = session(args)?;
    let json = args.json;
    let bar = !json && std::io::stderr().is_terminal();
    let mut last_state = None;
    let mut end = None;
    let followed = s.storm().follow_download(&id, FOLLOW_QUIET, |t, done| {
        let failed = t.state == TransferState::Failed;
        if json {
            let event = if done {
                "container_received"
            } else {
                "transfer_progress"
            };
            emit!("{}", transfer_json(t, event));
        } else if bar {
            let share = if t.chunks == 0 {
                0.0
            } else {
                f64::from(t.have) / f64::from(t.chunks)
            };
            let filled = (share * 30.0).round() as usize;
            eprint!(
                "\r[{}{}] {:>3.0}% {}/{} chunks {:<8}",
                "#".repeat(filled),
                " ".repeat(30 - filled.min(30)),
                share * 100.0,
                t.have,
                t.chunks,
                t.state.name()
            );
            if done || failed {
                eprintln!();
            }
        } else if last_state != Some(t.state) {
            emit!("{}", transfer_line(t));
        }
        last_state = Some(t.state);
        if done && !json {
            emit!(
                "{} received: {} bytes, {} chunks ({} fetched, {} already stored)",
                container_id_bech32(&id),
                t.size,
                t.chunks,
                t.fetched,
                t.had
            );
        }
        if failed {
            end = Some(format!("the download failed: {}", t.note));
        }
    });
    followed.map_err(|e| match e {
        StormError::Client(e) => follow_error(e),
        e => e.to_string(),
    })?;
    end.map_or(Ok(()), Err)
}
