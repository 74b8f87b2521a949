//! `nodectl storm chat …`: send, listen, history.

use super::{session, StormCmd};
use crate::client::ClientArgs;

use crate::render::{emit, hex, unexpected};
use lnpbp_nodes::wire::api::storm::{ChatEntry, StormMsg};
use lnpbp_nodes::wire::api::Msg;
use lnpbp_nodes::wire::limits::MAX_TEXT;

/// A chat text: any UTF-8 without control characters, at most MAX_TEXT bytes.
pub(super) fn chat_text_arg(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(format!("the text must have 1 to {MAX_TEXT} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("the text must not contain control characters".into());
    }
    Ok(text.to_string())
}

pub(super) fn chat_json(e: &ChatEntry) -> serde_json::Value {
    serde_json::json!({
        "from": if e.outgoing { "me".to_string() } else { hex(e.peer) },
        "peer": hex(e.peer), "outgoing": e.outgoing, "time_ms": e.time_ms, "text": e.text,
    })
}

pub(super) fn chat_line(e: &ChatEntry) -> String {
    let who = if e.outgoing {
        format!("me -> {}", hex(e.peer))
    } else {
        hex(e.peer)
    };
    format!("{} {who}: {}", e.time_ms, e.text)
}

pub(super) fn chat_listen(args: &ClientArgs<StormCmd>) -> Result<(), String> {
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

pub(super) fn chat_history(reply: Msg, json: bool) -> Result<(), String> {
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
