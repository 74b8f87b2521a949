//! `nodectl storm …`: the Storm Node's commands (the STORE tables, containers, apps).
//!
//! Every command talks to the node's API endpoint: STORE requests go to `stored`, container
//! and app requests to `stormd` (docs/API.md, "Storm requests").

use crate::client::{
    self, hex_arg, node_id_arg, read_bounded, text_arg, ClientArgs, Request, Session, Step,
};
use crate::common::{self, CommonCmd};
use crate::render::{self, emit, hex, unexpected};
use clap::{Args, Subcommand};
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::BusKind;
use lnpbp_nodes::storage::{check_table, stored_id};
use lnpbp_nodes::wire::api::storm::tables::CHUNKS;
use lnpbp_nodes::wire::api::storm::{
    ChatEntry, ContainerInfo, Key, StormMsg, TransferInfo, TransferState,
};
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use lnpbp_nodes::wire::limits::{
    CONTAINER_CHUNK, MAX_CONTAINER_CHUNKS, MAX_IDS, MAX_INFO, MAX_MIME, MAX_TEXT, MAX_VALUE,
};
use lnpbp_nodes::wire::storm::container::{
    chunk_id, container_id_bech32, parse_container_id, split, ContainerHeader, ContainerId,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Requests in flight while chunks go up or come down (lets `stored` group-commit them).
const WINDOW: usize = 32;

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
        StormCmd::Store { cmd } => return store(&args, cmd),
        StormCmd::Containerize(c) => return containerize(&args, c),
        StormCmd::Assemble { id, out } => return assemble(&args, id, out),
        StormCmd::Containers => Request::new(StormMsg::Containers, Box::new(containers)),
        StormCmd::Apps => Request::new(StormMsg::Apps, Box::new(apps)),
        StormCmd::Chat {
            cmd: ChatCmd::Listen,
        } => return chat_listen(&args),
        StormCmd::Chat {
            cmd: ChatCmd::Send { node_id, text },
        } => Request::new(
            StormMsg::ChatSend {
                node_id: node_id_arg(node_id)?,
                text: chat_text_arg(text)?,
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
            Box::new(chat_history),
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
        StormCmd::Transfers => Request::new(StormMsg::Transfers, Box::new(transfers)),
        StormCmd::Download { id, wait } => {
            let id = container_arg(id)?;
            return if *wait {
                download_wait(&args, id)
            } else {
                download(&args, id)
            };
        }
    };
    client::run(kind, &args, req)
}

/// A chat text: any UTF-8 without control characters, at most MAX_TEXT bytes.
fn chat_text_arg(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(format!("the text must have 1 to {MAX_TEXT} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("the text must not contain control characters".into());
    }
    Ok(text.to_string())
}

fn chat_json(e: &ChatEntry) -> serde_json::Value {
    serde_json::json!({
        "from": if e.outgoing { "me".to_string() } else { hex(e.peer) },
        "peer": hex(e.peer), "outgoing": e.outgoing, "time_ms": e.time_ms, "text": e.text,
    })
}

fn chat_line(e: &ChatEntry) -> String {
    let who = if e.outgoing {
        format!("me -> {}", hex(e.peer))
    } else {
        hex(e.peer)
    };
    format!("{} {who}: {}", e.time_ms, e.text)
}

fn chat_listen(args: &ClientArgs<StormCmd>) -> Result<(), String> {
    let mut s = session(args)?;
    let json = args.json;
    s.follow(StormMsg::ChatSubscribe.into(), json, |env| {
        let Msg::Storm(StormMsg::ChatIn(e)) = &env.msg else {
            return false;
        };
        if json {
            emit!("{}", chat_json(e));
        } else {
            emit!("{}", chat_line(e));
        }
        true
    })
}

fn chat_history(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Storm(StormMsg::ChatList(list)) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!(
            "{}",
            serde_json::Value::Array(list.iter().map(chat_json).collect())
        );
    } else if list.is_empty() {
        emit!("no messages");
    } else {
        for e in &list {
            emit!("{}", chat_line(e));
        }
    }
    Ok(())
}

fn session(args: &ClientArgs<StormCmd>) -> Result<Session, String> {
    Session::open(NodeKind::Storm, args, BusKind::Api, client::TIMEOUT)
}

fn table_arg(t: &str) -> Result<String, String> {
    check_table(t).map_err(|e| e.to_string())?;
    Ok(t.to_string())
}

fn key_arg(k: &str) -> Result<Key, String> {
    let bytes = hex_arg("the key", k)?;
    bytes
        .try_into()
        .map_err(|_| format!("the key `{}` is not 64 hex digits", client::shown(k)))
}

/// Reads at most `max` bytes from `r`; more is an error, not a truncation.
fn store(args: &ClientArgs<StormCmd>, cmd: &StoreCmd) -> Result<(), String> {
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

fn list(args: &ClientArgs<StormCmd>, table: String) -> Result<(), String> {
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

fn container_json(c: &ContainerInfo) -> serde_json::Value {
    serde_json::json!({
        "container_id": hex(c.id),
        "id": container_id_bech32(&c.id),
        "mime": c.header.mime,
        "info": c.header.info,
        "size": c.header.size,
        "chunks": c.chunks,
    })
}

fn containerize(args: &ClientArgs<StormCmd>, c: &ContainerizeArgs) -> Result<(), String> {
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
    let ids: Vec<_> = split(&content, CONTAINER_CHUNK).map(chunk_id).collect();
    // Each upload is built when the window has room: at most WINDOW chunks are copied at once.
    let uploads = split(&content, CONTAINER_CHUNK).map(|part| {
        Msg::from(StormMsg::StoreChunk {
            table: CHUNKS.into(),
            data: part.to_vec(),
        })
    });
    s.pipeline(&stored_id(), uploads, WINDOW, |i, reply| match reply {
        Msg::Storm(StormMsg::ChunkStored(id)) if id == ids[i] => Ok(()),
        other => Err(format!("chunk {i}: {}", unexpected(&other))),
    })?;
    let header = ContainerHeader {
        version: 0,
        mime,
        info: c.info.clone(),
        size: content.len() as u64,
    };
    let reply = s.request_to(
        &ServiceId::Stormd,
        StormMsg::Containerize {
            header,
            chunks: ids,
        }
        .into(),
    )?;
    let Msg::Storm(StormMsg::ContainerCreated(info)) = reply else {
        return Err(unexpected(&reply));
    };
    if args.json {
        emit!("{}", container_json(&info));
    } else {
        emit!("{}", hex(info.id));
        emit!("{}", container_id_bech32(&info.id));
        emit!("{} bytes in {} chunks", info.header.size, info.chunks);
    }
    Ok(())
}

fn assemble(args: &ClientArgs<StormCmd>, id: &str, out: &Path) -> Result<(), String> {
    let id = container_arg(id)?;
    let mut s = session(args)?;
    let reply = s.request_to(&ServiceId::Stormd, StormMsg::Assemble(id).into())?;
    let Msg::Storm(StormMsg::ContainerData { container, .. }) = reply else {
        return Err(unexpected(&reply));
    };
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
        let mut size = 0u64;
        let chunks = &container.chunks;
        let reads = chunks.iter().map(|cid| {
            Msg::from(StormMsg::RetrieveChunk {
                table: CHUNKS.into(),
                id: *cid,
            })
        });
        s.pipeline(&stored_id(), reads, WINDOW, |i, reply| {
            let Msg::Storm(StormMsg::Value(data)) = reply else {
                return Err(unexpected(&reply));
            };
            if chunk_id(&data) != chunks[i] {
                return Err(format!(
                    "chunk #{i} {} does not hash to its id",
                    hex(chunks[i])
                ));
            }
            size += data.len() as u64;
            f.write_all(&data)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        })?;
        if size != container.header.size {
            return Err(format!(
                "the chunks hold {size} bytes, the header says {}",
                container.header.size
            ));
        }
        f.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
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

fn containers(reply: Msg, json: bool) -> Result<(), String> {
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

fn apps(reply: Msg, json: bool) -> Result<(), String> {
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

fn transfer_json(t: &TransferInfo, event: &str) -> serde_json::Value {
    serde_json::json!({
        "event": event,
        "container_id": hex(t.container_id),
        "id": container_id_bech32(&t.container_id),
        "peer": hex(t.peer),
        "app": t.app,
        "state": state_name(t.state),
        "size": t.size,
        "chunks": t.chunks,
        "have": t.have,
        "had": t.had,
        "fetched": t.fetched,
        "served": t.served,
        "note": t.note,
    })
}

fn state_name(s: TransferState) -> &'static str {
    s.name()
}

fn transfer_line(t: &TransferInfo) -> String {
    let mut line = format!(
        "{} {} peer {} app {:#06x}: {} bytes",
        container_id_bech32(&t.container_id),
        state_name(t.state),
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

fn transfers(reply: Msg, json: bool) -> Result<(), String> {
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

fn download(args: &ClientArgs<StormCmd>, id: ContainerId) -> Result<(), String> {
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

fn download_wait(args: &ClientArgs<StormCmd>, id: ContainerId) -> Result<(), String> {
    use std::io::IsTerminal;
    let mut s = session(args)?;
    let json = args.json;
    let bar = !json && std::io::stderr().is_terminal();
    let mut result = Ok(());
    let mut last_state = None;
    s.follow_until(StormMsg::TransferSubscribe(Some(id)).into(), |env| {
        let (t, done) = match &env.msg {
            Msg::Storm(StormMsg::TransferProgress(t)) => (t, false),
            Msg::Storm(StormMsg::ContainerReceived(t)) => (t, true),
            _ => return Step::Other,
        };
        if t.container_id != id || t.state == TransferState::Shared {
            return Step::Event;
        }
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
                state_name(t.state)
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
            result = Err(format!("the download failed: {}", t.note));
        }
        if done || failed {
            Step::Done
        } else {
            Step::Event
        }
    })?;
    result
}
