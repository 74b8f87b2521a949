//! `nodectl storm containerize | assemble | containers | apps`: containers and apps.

use super::{container_arg, session, ContainerizeArgs, StormCmd};
use crate::client::ClientArgs;

use crate::client::{read_bounded, text_arg};
use crate::render::{emit, hex, unexpected};
use lnpbp_nodes::wire::api::storm::{ContainerInfo, StormMsg};
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::limits::{CONTAINER_CHUNK, MAX_CONTAINER_CHUNKS, MAX_INFO, MAX_MIME};
use lnpbp_nodes::wire::storm::container::container_id_bech32;
use std::io::Write;
use std::path::Path;

pub(super) fn container_json(c: &ContainerInfo) -> serde_json::Value {
    serde_json::json!({
        "container_id": hex(c.id),
        "id": container_id_bech32(&c.id),
        "mime": c.header.mime,
        "info": c.header.info,
        "size": c.header.size,
        "chunks": c.chunks,
    })
}

pub(super) fn containerize(
    args: &ClientArgs<StormCmd>,
    c: &ContainerizeArgs,
) -> Result<(), String> {
    let mime = text_arg("the MIME type", &c.mime, MAX_MIME)?;
    if c.info.len() > MAX_INFO || c.info.chars().any(char::is_control) {
        return Err(format!(
            "--info must be at most {MAX_INFO} bytes without control characters"
        ));
    }
    let max = MAX_CONTAINER_CHUNKS * CONTAINER_CHUNK;
    let file = std::fs::File::open(&c.file)
        .map_err(|e| format!("cannot open {}: {e}", c.file.display()))?;
    let content = read_bounded(file, max, &c.file.display().to_string())?;
    let mut s = session(args)?;
    let info = s
        .storm()
        .containerize(&content, &mime, &c.info)
        .map_err(|e| e.to_string())?;
    if args.json {
        emit!("{}", container_json(&info));
    } else {
        emit!("{}", hex(info.id));
        emit!("{}", container_id_bech32(&info.id));
        emit!("{} bytes in {} chunks", info.header.size, info.chunks);
    }
    Ok(())
}

pub(super) fn assemble(args: &ClientArgs<StormCmd>, id: &str, out: &Path) -> Result<(), String> {
    let id = container_arg(id)?;
    let mut s = session(args)?;
    // Write to a temporary file beside OUT; it becomes OUT only when every chunk checked out.
    let name = out
        .file_name()
        .ok_or_else(|| format!("{} is not a file name", out.display()))?;
    let tmp = out.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let write = |data: &[u8]| {
            f.write_all(data)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        };
        let container = s
            .storm()
            .assemble(&id, u64::MAX, write)
            .map_err(|e| e.to_string())?;
        f.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok::<_, String>(container)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let container = result?;
    if args.json {
        emit!(
            "{}",
            serde_json::json!({
                "container_id": hex(id), "out": out, "size": container.header.size,
                "chunks": container.chunks.len(),
            })
        );
    } else {
        emit!(
            "{} bytes written to {}",
            container.header.size,
            out.display()
        );
    }
    Ok(())
}

pub(super) fn containers(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Storm(StormMsg::ContainerList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list.iter().map(container_json).collect();
        emit!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if list.is_empty() {
        emit!("no containers");
    }
    for c in list {
        emit!(
            "{} {} {} bytes, {} chunks, {}",
            container_id_bech32(&c.id),
            c.header.mime,
            c.header.size,
            c.chunks,
            c.header.info
        );
    }
    Ok(())
}

pub(super) fn apps(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Storm(StormMsg::AppList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|a| serde_json::json!({"app": a.app, "name": a.name}))
            .collect();
        emit!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if list.is_empty() {
        emit!("no apps");
    }
    for a in list {
        emit!("{:#06x} {}", a.app, a.name);
    }
    Ok(())
}
