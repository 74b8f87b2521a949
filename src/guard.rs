//! Panic policy (docs/ARCHITECTURE.md, "Supervision"): a panic inside a guarded section (a service handler, a
//! bus socket thread) becomes an error that the supervisor handles; a panic anywhere else is a
//! bug in the spine itself and aborts the process, so there is never a half-dead node.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`, turning a panic into `Err("panic: <message>")`.
pub fn guard<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    match result {
        Ok(r) => r,
        Err(payload) => Err(format!("panic: {}", panic_message(&*payload))),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Installs the process panic hook: one log line per panic; abort when unguarded.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        if GUARDED.with(|g| g.get()) > 0 {
            tracing::error!(
                thread,
                at,
                "panic (caught; the guarded service fails): {msg}"
            );
        } else {
            tracing::error!(
                thread,
                at,
                "panic outside any supervised service, aborting: {msg}"
            );
            eprintln!("nodectl: fatal panic in thread {thread} at {at}: {msg}");
            std::process::abort();
        }
    }));
}
