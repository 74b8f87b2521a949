//! The seam between a sans-I/O peer session (`ln::peer::Session`, `bifrost::peer::Session`,
//! `btc::peer::Session`) and the connection driver that feeds it (`actors::conn`). The driver
//! owns the socket, the timer and back-pressure; the session owns the protocol.
//!
//! A session, and the protocol code above it, say what must happen to the connection with a
//! [`PeerError`]: its [`PeerAction`] is the policy (as rust-lightning's `ErrorAction`), and the
//! driver enforces it the same way for every protocol.

use std::fmt;
use std::time::Instant;

/// What the connection driver does about a [`PeerError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAction {
    /// Close the connection.
    Close,
    /// Close the connection after the message that tells the peer why (a BOLT-1 `warning`, a
    /// Bifrost `error`), which the session has queued: the driver flushes it first.
    CloseAfterWarning,
    /// Keep the connection: the error is logged (at debug level) and the session goes on.
    IgnoreAndLog,
    /// Close the connection and refuse the peer's address for a while (Bitcoin Core's
    /// discouragement).
    Discourage,
}

/// Why something went wrong with a peer, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerError {
    /// What happened, for the log and the API.
    pub reason: String,
    /// What the driver does.
    pub action: PeerAction,
}

impl PeerError {
    /// The connection closes.
    pub fn close(reason: impl Into<String>) -> PeerError {
        PeerError::with(reason, PeerAction::Close)
    }

    /// The connection closes once the queued warning is written.
    pub fn warned(reason: impl Into<String>) -> PeerError {
        PeerError::with(reason, PeerAction::CloseAfterWarning)
    }

    /// The connection stays; the reason is logged.
    pub fn ignore(reason: impl Into<String>) -> PeerError {
        PeerError::with(reason, PeerAction::IgnoreAndLog)
    }

    /// The connection closes and the peer's address is discouraged.
    pub fn discourage(reason: impl Into<String>) -> PeerError {
        PeerError::with(reason, PeerAction::Discourage)
    }

    fn with(reason: impl Into<String>, action: PeerAction) -> PeerError {
        PeerError {
            reason: reason.into(),
            action,
        }
    }

    /// Whether the connection ends.
    pub fn closes(&self) -> bool {
        self.action != PeerAction::IgnoreAndLog
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for PeerError {}

/// A peer session driven by bytes and time.
pub trait PeerSession {
    /// What the session reports (handshake done, a pong, a message for the node's logic).
    type Event;
    /// What the session consults while receiving, beyond bytes and time (LNP: which message
    /// types a service asked for; BP: nothing).
    type Context: ?Sized;

    /// Consumes complete messages from the front of `buf` while fewer than `max_out` bytes wait
    /// in the output (the rest stays in `buf`), reporting what happened in `events`. Events
    /// pushed before an error still count.
    fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        context: &Self::Context,
        max_out: usize,
        events: &mut Vec<Self::Event>,
    ) -> Result<(), PeerError>;

    /// Runs the timers (handshake deadlines, pings). `entropy` is a fresh random number for
    /// what needs one (a Bitcoin ping nonce).
    fn tick(&mut self, now: Instant, entropy: u64) -> Result<(), PeerError>;

    /// When [`PeerSession::tick`] has something to do next (none: nothing until more input).
    /// The driver sleeps until then instead of ticking on a period, so an idle peer costs no
    /// wake-ups between its pings. Calling `tick` at this instant must move it on (send the
    /// ping, fail the deadline), or the driver would wake again at once.
    fn next_deadline(&self) -> Option<Instant>;

    /// The bytes to write, taken out of the session.
    fn take_output(&mut self) -> Vec<u8>;

    /// Bytes waiting in the output.
    fn pending_output(&self) -> usize;
}
