//! Shared rendering of replies: one line per item for people, one JSON value with `--json`.
//! Every line goes through [`emit_line`], so a closed stdout (`nodectl lnp info | head`) ends
//! the client quietly instead of panicking.

use lnpbp_nodes::wire::api::{Detail, Msg, NodeInfo, ServiceEvent};

/// Prints one line (format arguments) through [`emit_line`].
macro_rules! emit {
    ($($arg:tt)*) => { $crate::render::emit_line(format_args!($($arg)*)) };
}
pub(crate) use emit;

/// Writes one line to stdout. A reader that went away ends the client with success; any
/// other write error is a failure.
pub fn emit_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nodectl: error: cannot write to stdout: {e}");
        std::process::exit(crate::EXIT_FAILURE as i32);
    }
}

/// Lower-case hex.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(bytes.as_ref())
}

/// A round-trip time for people: milliseconds with three decimals, or `-` if none yet.
pub fn rtt_text(us: Option<u64>) -> String {
    us.map(|us| format!("{:.3} ms", us as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// The error for a reply of the wrong type.
pub fn unexpected(msg: &Msg) -> String {
    format!("unexpected reply type {:#06x}", msg.type_id())
}

/// Renders a `success` reply (its message, or `{"ok": true, "message": …}`).
pub fn success(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::Success(text) = reply else {
        return Err(unexpected(&reply));
    };
    if json {
        emit!("{}", serde_json::json!({ "ok": true, "message": text }));
    } else if let Some(t) = text {
        emit!("{t}");
    }
    Ok(())
}

/// Renders a service event.
pub fn event(ev: &ServiceEvent, json: bool) {
    if json {
        emit!(
            "{}",
            serde_json::json!({
                "service": ev.service, "state": ev.state.as_str(),
                "restarts": ev.restarts, "cause": ev.cause,
            })
        );
    } else {
        let cause = ev
            .cause
            .as_deref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        emit!(
            "{} {} (restarts {}){cause}",
            ev.service,
            ev.state.as_str(),
            ev.restarts
        );
    }
}

/// Renders `info`.
pub fn info(reply: Msg, json: bool) -> Result<(), String> {
    let Msg::NodeInfo(info) = reply else {
        return Err(unexpected(&reply));
    };
    print_info(&info, json);
    Ok(())
}

fn print_info(info: &NodeInfo, json: bool) {
    if json {
        let services: Vec<_> = info
            .services
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "state": s.state.as_str(),
                    "restarts": s.restarts, "last_failure": s.last_failure,
                })
            })
            .collect();
        let endpoints: Vec<_> = info
            .endpoints
            .iter()
            .map(|e| serde_json::json!({ "bus": e.bus, "endpoint": e.endpoint }))
            .collect();
        let mut v = serde_json::json!({
            "node": info.node, "version": info.version, "network": info.network,
            "node_id": hex(info.node_id), "uptime_s": info.uptime_s,
            "endpoints": endpoints, "services": services,
        });
        for (key, value) in &info.details {
            v[key.as_str()] = match value {
                Detail::U64(n) => serde_json::json!(n),
                Detail::Text(t) => serde_json::json!(t),
                Detail::List(l) => serde_json::json!(l),
            };
        }
        emit!("{v}");
        return;
    }
    emit!("node       {} (nodectl {})", info.node, info.version);
    emit!("network    {}", info.network);
    emit!("node id    {}", hex(info.node_id));
    emit!("uptime     {} s", info.uptime_s);
    for (key, value) in &info.details {
        let text = match value {
            Detail::U64(n) => n.to_string(),
            Detail::Text(t) => t.clone(),
            Detail::List(l) if l.is_empty() => "-".into(),
            Detail::List(l) => l.join(", "),
        };
        emit!("{key:<10} {text}");
    }
    emit!("endpoints");
    for e in &info.endpoints {
        emit!("  {:<8} {}", e.bus, e.endpoint);
    }
    emit!(
        "services   {:<16} {:<11} {:>8}  last failure",
        "",
        "state",
        "restarts"
    );
    for s in &info.services {
        emit!(
            "  {:<24} {:<11} {:>8}  {}",
            s.name,
            s.state.as_str(),
            s.restarts,
            s.last_failure.as_deref().unwrap_or("-")
        );
    }
}
