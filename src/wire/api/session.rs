//! Encrypted bus sessions over ZMQ TCP (docs/API.md, "Remote API"), sans-I/O.
//!
//! A client's DEALER and a node's ROUTER exchange one-frame ZMQ messages:
//!
//! 1. client → node: act one of BOLT-8's Noise_XK handshake (50 bytes); the node's static key
//!    (its node id) is the responder's key;
//! 2. node → client: act two (50 bytes);
//! 3. client → node: act three (66 bytes), which carries the client's static key: the node
//!    checks it against the bus's allow-list;
//! 4. then, both ways, every bus message is one Brontozaur packet (BOLT-8 transport with a
//!    3-byte little-endian length; keys rotate every 1,000 nonces as in BOLT-8) whose
//!    plaintext is [`seal_frames`]: `src` and `dst` (u16 LE length each, then the bytes) and the
//!    payload (the rest).
//!
//! Anything else (a message of the wrong size during the handshake, a packet that does not
//! decrypt, several packets or trailing bytes in one ZMQ message, frames that do not parse) is a
//! [`SessionError`]: the caller ends the session.

use crate::wire::ln::bolt8::{Framing, HandshakeError, Transport, TransportError};
use crate::wire::ln::handshake::{Handshake, Progress};
use bitcoin::secp256k1::{PublicKey, SecretKey};

/// Longest `src` or `dst` frame (a strict-encoded service id is at most 67 bytes).
pub const MAX_ID_FRAME: usize = 256;

/// Why a session ends.
#[derive(Debug)]
pub enum SessionError {
    /// A handshake message of the wrong length, or one that does not check out.
    Handshake(String),
    /// A packet that does not decrypt, or not exactly one packet in a message.
    Transport(String),
    /// Decrypted frames that do not parse.
    Frames(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Handshake(e) => write!(f, "handshake: {e}"),
            SessionError::Transport(e) => write!(f, "transport: {e}"),
            SessionError::Frames(e) => write!(f, "frames: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> SessionError {
        SessionError::Handshake(e.to_string())
    }
}

impl From<TransportError> for SessionError {
    fn from(e: TransportError) -> SessionError {
        SessionError::Transport(e.to_string())
    }
}

/// The plaintext of one bus message: `u16 LE len ‖ src ‖ u16 LE len ‖ dst ‖ payload`.
pub fn seal_frames(src: &[u8], dst: &[u8], payload: &[u8]) -> Result<Vec<u8>, SessionError> {
    if src.len() > MAX_ID_FRAME || dst.len() > MAX_ID_FRAME {
        return Err(SessionError::Frames("an id frame above 256 bytes".into()));
    }
    let mut out = Vec::with_capacity(4 + src.len() + dst.len() + payload.len());
    for id in [src, dst] {
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id);
    }
    out.extend_from_slice(payload);
    Ok(out)
}

/// The three frames of a plaintext made by [`seal_frames`].
pub fn open_frames(plain: &[u8]) -> Result<[Vec<u8>; 3], SessionError> {
    let mut rest = plain;
    let mut id = || -> Result<Vec<u8>, SessionError> {
        if rest.len() < 2 {
            return Err(SessionError::Frames("truncated".into()));
        }
        let n = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        if n > MAX_ID_FRAME || rest.len() < 2 + n {
            return Err(SessionError::Frames(format!("an id frame of {n} bytes")));
        }
        let v = rest[2..2 + n].to_vec();
        rest = &rest[2 + n..];
        Ok(v)
    };
    let src = id()?;
    let dst = id()?;
    Ok([src, dst, rest.to_vec()])
}

/// Decrypts exactly one packet from one ZMQ message.
fn open_packet(t: &mut Transport, msg: &[u8]) -> Result<Vec<u8>, SessionError> {
    let mut buf = msg.to_vec();
    match t.decrypt(&mut buf)? {
        Some(plain) if buf.is_empty() => Ok(plain),
        Some(_) => Err(SessionError::Transport("bytes after the packet".into())),
        None => Err(SessionError::Transport("a truncated packet".into())),
    }
}

enum ServerState {
    /// Before act one (its ephemeral key comes with it).
    AwaitAct1,
    /// After act two.
    Handshake(Handshake),
    /// Open: the transport and the client's key.
    Open(Transport, PublicKey),
    Ended,
}

/// What a message did to a server session.
pub enum ServerStep {
    /// Send these bytes back (act two).
    Reply(Vec<u8>),
    /// The handshake completed: this is the client's static key (check the allow-list).
    Authenticated(PublicKey),
    /// A bus message: `[src, dst, payload]`.
    Frames([Vec<u8>; 3]),
}

/// Takes one act, a whole ZMQ message: one of another length ends the session.
fn act(hs: Handshake, msg: &[u8], out: &mut Vec<u8>) -> Result<Progress, SessionError> {
    if msg.len() != hs.act_len() {
        return Err(SessionError::Handshake(format!(
            "{} bytes instead of {} ({})",
            msg.len(),
            hs.awaited(),
            hs.act_len()
        )));
    }
    Ok(hs.step(msg, out)?)
}

/// The node's side of one session.
pub struct ServerSession {
    state: ServerState,
    max_msg: usize,
}

impl ServerSession {
    /// A session waiting for act one; bus messages up to `max_msg` bytes.
    pub fn new(max_msg: usize) -> ServerSession {
        ServerSession {
            state: ServerState::AwaitAct1,
            max_msg,
        }
    }

    /// Whether act one is due (the only step that uses an ephemeral key).
    pub fn awaits_act_one(&self) -> bool {
        matches!(self.state, ServerState::AwaitAct1)
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        matches!(self.state, ServerState::Open(..))
    }

    /// The client's key, once the handshake is done.
    pub fn client_key(&self) -> Option<PublicKey> {
        match &self.state {
            ServerState::Open(_, k) => Some(*k),
            _ => None,
        }
    }

    /// Takes one ZMQ message from the client. `local` is the node's static key; `ephemeral` a
    /// fresh key (used for act two only). After an error the session is ended for good.
    pub fn on_message(
        &mut self,
        msg: &[u8],
        local: &SecretKey,
        ephemeral: SecretKey,
    ) -> Result<ServerStep, SessionError> {
        let state = std::mem::replace(&mut self.state, ServerState::Ended);
        let hs = match state {
            ServerState::AwaitAct1 => Handshake::respond(*local, ephemeral, Framing::Brontozaur),
            ServerState::Handshake(hs) => hs,
            ServerState::Open(mut t, key) => {
                let plain = open_packet(&mut t, msg)?;
                let frames = open_frames(&plain)?;
                self.state = ServerState::Open(t, key);
                return Ok(ServerStep::Frames(frames));
            }
            ServerState::Ended => {
                return Err(SessionError::Handshake("the session has ended".into()))
            }
        };
        let mut reply = Vec::new();
        match act(hs, msg, &mut reply)? {
            Progress::Next(hs) | Progress::Wait(hs) => {
                self.state = ServerState::Handshake(hs);
                Ok(ServerStep::Reply(reply))
            }
            Progress::Done {
                mut transport,
                learnt: Some(key),
            } => {
                transport.set_max_receive(self.max_msg);
                self.state = ServerState::Open(transport, key);
                Ok(ServerStep::Authenticated(key))
            }
            Progress::Done { learnt: None, .. } => Err(SessionError::Handshake(
                "the responder did not learn the client's key".into(),
            )),
        }
    }

    /// Encrypts a bus message for the client (the session must be open).
    pub fn seal(
        &mut self,
        src: &[u8],
        dst: &[u8],
        payload: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        let plain = seal_frames(src, dst, payload)?;
        match &mut self.state {
            ServerState::Open(t, _) => Ok(t.encrypt(&plain)?),
            _ => Err(SessionError::Handshake("the session is not open".into())),
        }
    }
}

/// The client's side of one session, during the handshake.
pub struct ClientHandshake {
    hs: Handshake,
    max_msg: usize,
}

impl ClientHandshake {
    /// Starts a session to the node `node` as `local`; the bytes of act one to send.
    pub fn start(
        local: SecretKey,
        node: PublicKey,
        ephemeral: SecretKey,
        max_msg: usize,
    ) -> (Vec<u8>, ClientHandshake) {
        let mut act1 = Vec::new();
        let hs = Handshake::initiate(local, node, ephemeral, Framing::Brontozaur, &mut act1);
        (act1, ClientHandshake { hs, max_msg })
    }

    /// Takes act two; the bytes of act three to send and the open session.
    pub fn on_act_two(self, msg: &[u8]) -> Result<(Vec<u8>, ClientSession), SessionError> {
        let mut act3 = Vec::new();
        match act(self.hs, msg, &mut act3)? {
            Progress::Done { mut transport, .. } => {
                transport.set_max_receive(self.max_msg);
                Ok((act3, ClientSession { t: transport }))
            }
            _ => Err(SessionError::Handshake(
                "the handshake did not end after act two".into(),
            )),
        }
    }
}

/// The client's side of an open session.
pub struct ClientSession {
    t: Transport,
}

impl ClientSession {
    /// Encrypts a bus message for the node.
    pub fn seal(
        &mut self,
        src: &[u8],
        dst: &[u8],
        payload: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        Ok(self.t.encrypt(&seal_frames(src, dst, payload)?)?)
    }

    /// Encrypts any plaintext as one packet (tests and fuzzing: frames that may not parse).
    pub fn seal_plain(&mut self, plain: &[u8]) -> Result<Vec<u8>, SessionError> {
        Ok(self.t.encrypt(plain)?)
    }

    /// Decrypts a ZMQ message from the node: `[src, dst, payload]`.
    pub fn open(&mut self, msg: &[u8]) -> Result<[Vec<u8>; 3], SessionError> {
        open_frames(&open_packet(&mut self.t, msg)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::Secp256k1;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }

    fn open_pair() -> (ServerSession, ClientSession, PublicKey) {
        let secp = Secp256k1::new();
        let node = key(0x21);
        let (act1, hs) =
            ClientHandshake::start(key(0x11), node.public_key(&secp), key(0x12), 1 << 20);
        let mut server = ServerSession::new(1 << 20);
        let ServerStep::Reply(act2) = server.on_message(&act1, &node, key(0x22)).unwrap() else {
            panic!("act two")
        };
        let (act3, client) = hs.on_act_two(&act2).unwrap();
        let ServerStep::Authenticated(k) = server.on_message(&act3, &node, key(0x23)).unwrap()
        else {
            panic!("authenticated")
        };
        (server, client, k)
    }

    #[test]
    fn a_session_authenticates_the_client_and_carries_frames_both_ways_past_rotation() {
        let secp = Secp256k1::new();
        let (mut server, mut client, k) = open_pair();
        assert_eq!(k, key(0x11).public_key(&secp));
        // 1,200 round trips: both directions rotate their keys (every 500 messages).
        for i in 0..1_200u32 {
            let payload = i.to_le_bytes();
            let packet = client.seal(b"\x02client!!", b"\x40", &payload).unwrap();
            let ServerStep::Frames(f) = server.on_message(&packet, &key(0x21), key(1)).unwrap()
            else {
                panic!("frames")
            };
            assert_eq!(
                f,
                [b"\x02client!!".to_vec(), b"\x40".to_vec(), payload.to_vec()]
            );
            let back = server.seal(b"\x40", b"\x02client!!", b"reply").unwrap();
            assert_eq!(client.open(&back).unwrap()[2], b"reply");
        }
    }

    #[test]
    fn garbage_replays_and_flipped_bits_end_the_session() {
        let node = key(0x21);
        // Garbage instead of act one.
        let mut s = ServerSession::new(1 << 20);
        assert!(s.on_message(&[0u8; 50], &node, key(2)).is_err());
        assert!(
            s.on_message(&[0u8; 50], &node, key(2)).is_err(),
            "ended for good"
        );
        // Act one replayed where act three is due.
        let secp = Secp256k1::new();
        let (act1, _) =
            ClientHandshake::start(key(0x11), node.public_key(&secp), key(0x12), 1 << 20);
        let mut s = ServerSession::new(1 << 20);
        assert!(s.on_message(&act1, &node, key(2)).is_ok());
        assert!(s.on_message(&act1, &node, key(3)).is_err());
        // A flipped bit in a packet after the handshake.
        let (mut server, mut client, _) = open_pair();
        let mut packet = client.seal(b"a", b"b", b"payload").unwrap();
        let last = packet.len() - 1;
        packet[last] ^= 1;
        assert!(server.on_message(&packet, &node, key(4)).is_err());
        // Two packets in one message.
        let (mut server, mut client, _) = open_pair();
        let mut two = client.seal(b"a", b"b", b"1").unwrap();
        two.extend(client.seal(b"a", b"b", b"2").unwrap());
        assert!(server.on_message(&two, &node, key(4)).is_err());
    }

    #[test]
    fn frames_parse_only_when_whole() {
        let f = seal_frames(b"src", b"dst", b"payload").unwrap();
        assert_eq!(
            open_frames(&f).unwrap(),
            [b"src".to_vec(), b"dst".to_vec(), b"payload".to_vec()]
        );
        for cut in 0..7 {
            assert!(open_frames(&f[..cut]).is_err(), "cut at {cut}");
        }
        assert!(seal_frames(&[0; 257], b"d", b"").is_err());
        assert!(open_frames(&[0xff, 0xff, 1]).is_err());
    }
}
