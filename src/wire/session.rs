//! The seam between a sans-I/O peer session (`lnp_peer::Session`, `btc_peer::Session`, the
//! Bifrost session to come) and the connection driver that feeds it (`actors::conn`). The
//! driver owns the socket, the timer and back-pressure; the session owns the protocol.

use std::time::Instant;

/// The error a session ends with. It carries what the driver's owner must do (warn, close,
/// discourage); the driver itself only needs its text, and a way to say "closed" for what
/// happens outside the session (the socket ended, a dial failed, a handler failed).
pub trait SessionError {
    /// A plain disconnect with `reason`.
    fn disconnect(reason: String) -> Self;
    /// What happened, for the log and the API.
    fn reason(&self) -> &str;
}

/// A peer session driven by bytes and time.
pub trait PeerSession {
    /// What the session reports (handshake done, a pong, a message for the node's logic).
    type Event;
    /// Why the session ended.
    type Error: SessionError;
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
    ) -> Result<(), Self::Error>;

    /// Runs the timers (handshake deadlines, pings). `entropy` is a fresh random number for
    /// what needs one (a Bitcoin ping nonce).
    fn tick(&mut self, now: Instant, entropy: u64) -> Result<(), Self::Error>;

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
