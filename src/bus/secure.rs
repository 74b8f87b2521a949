//! Encrypted sessions of a TCP bus (docs/API.md, "Remote API"): the session table of one bus
//! socket, over the sans-I/O sessions of [`crate::wire::api::session`].
//!
//! Every ZMQ peer of a TCP bus (a routing id) has one session. Its first three messages are
//! the Noise_XK handshake; a client whose static key is not on the [`AllowList`] gets no
//! session (the refusal is logged with its key and address; the client is told nothing).
//! After that each message is one encrypted bus message. Limits, each a reason to end a
//! session (and only that one): a handshake act not received within [`ACT_TIMEOUT`], at most
//! [`MAX_HANDSHAKES`] handshakes in progress (a newcomer evicts the oldest), at most
//! [`MAX_SESSIONS`] open sessions (a newcomer evicts one idle for [`EVICT_IDLE`], or is
//! refused), an open session silent for [`IDLE_TIMEOUT`] expires (ZMQ does not tell a ROUTER
//! that a peer went away), and a message that does not decrypt or parse. A refused peer's
//! further messages are dropped without a word for [`REFUSED_FOR`].

use crate::wire::api::session::{ServerSession, ServerStep, SessionError};
use crate::wire::node_id::NodeId;
use bitcoin::hex::DisplayHex;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Longest wait for each handshake act.
pub const ACT_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress on one bus.
pub const MAX_HANDSHAKES: usize = 128;
/// Open sessions on one bus.
pub const MAX_SESSIONS: usize = 1024;
/// An open session with no message for this long ends (a client reconnects; one that only
/// listens sends something, `info` say, at least this often).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// When the open sessions are all taken, one idle this long makes room for a newcomer.
pub const EVICT_IDLE: Duration = Duration::from_secs(10);
/// A peer whose key was refused: its next messages are dropped silently for this long.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);

/// The client keys allowed to open sessions (shared by a node's TCP buses and changed at run
/// time by `rpc_allow` / `rpc_revoke`).
#[derive(Default, Debug)]
pub struct AllowList {
    keys: RwLock<BTreeSet<NodeId>>,
}

impl AllowList {
    /// A list of `keys`.
    pub fn new(keys: impl IntoIterator<Item = NodeId>) -> AllowList {
        AllowList {
            keys: RwLock::new(keys.into_iter().collect()),
        }
    }

    /// Whether `key` is allowed.
    pub fn allows(&self, key: &PublicKey) -> bool {
        crate::sync::read(&self.keys).contains(&NodeId::from(key))
    }

    /// Adds a key; whether it was new.
    pub fn allow(&self, key: NodeId) -> bool {
        crate::sync::write(&self.keys).insert(key)
    }

    /// Removes a key; whether it was there.
    pub fn revoke(&self, key: &NodeId) -> bool {
        crate::sync::write(&self.keys).remove(key)
    }

    /// Every key, sorted.
    pub fn list(&self) -> Vec<NodeId> {
        crate::sync::read(&self.keys).iter().copied().collect()
    }
}

/// What a bus needs to run encrypted sessions.
#[derive(Clone)]
pub struct SecureConfig {
    /// The node's static key (its id is the public key).
    pub key: SecretKey,
    /// Allowed client keys.
    pub allow: Arc<AllowList>,
}

struct Entry {
    session: ServerSession,
    /// When the last act (or message) came.
    last: Instant,
    addr: String,
}

/// What the socket does with a message after [`Sessions::on_message`].
pub enum Inbound {
    /// Send this to the peer (act two).
    Reply(Vec<u8>),
    /// A decrypted bus message `[src, dst, payload]`.
    Frames([Vec<u8>; 3]),
    /// Nothing (handshake done, or the session ended).
    Nothing,
}

/// The sessions of one bus.
pub struct Sessions {
    bus: &'static str,
    config: SecureConfig,
    max_msg: usize,
    map: HashMap<Vec<u8>, Entry>,
    /// Peers refused lately (routing id -> when), at most [`MAX_HANDSHAKES`].
    refused: HashMap<Vec<u8>, Instant>,
}

impl Sessions {
    /// No sessions yet on bus `bus` (its name, for logs).
    pub fn new(bus: &'static str, config: SecureConfig, max_msg: usize) -> Sessions {
        Sessions {
            bus,
            config,
            max_msg,
            map: HashMap::new(),
            refused: HashMap::new(),
        }
    }

    fn refuse(&mut self, rid: &[u8], now: Instant) {
        if self.refused.len() >= MAX_HANDSHAKES {
            if let Some(k) = self
                .refused
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                self.refused.remove(&k);
            }
        }
        self.refused.insert(rid.to_vec(), now);
    }

    fn handshakes(&self) -> usize {
        self.map.values().filter(|e| !e.session.is_open()).count()
    }

    fn end(&mut self, rid: &[u8], why: &str) {
        if let Some(e) = self.map.remove(rid) {
            let src = format!("{}:{}", self.bus, e.addr);
            if crate::lograte::FAILED_HANDSHAKES.allow(&src) {
                tracing::warn!(bus = self.bus, addr = %e.addr, "encrypted session ended: {why}");
            }
        }
    }

    /// Takes one ZMQ message from peer `rid` (at `addr`).
    pub fn on_message(&mut self, rid: &[u8], addr: &str, msg: &[u8], now: Instant) -> Inbound {
        if self.refused.contains_key(rid) {
            return Inbound::Nothing;
        }
        if !self.map.contains_key(rid) {
            if self.handshakes() >= MAX_HANDSHAKES {
                // The oldest handshake makes room for the newcomer.
                let oldest = self
                    .map
                    .iter()
                    .filter(|(_, e)| !e.session.is_open())
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.end(&k, "evicted by a newer handshake (too many at once)");
                }
            }
            self.map.insert(
                rid.to_vec(),
                Entry {
                    session: ServerSession::new(self.max_msg),
                    last: now,
                    addr: addr.to_string(),
                },
            );
        }
        let entry = self.map.get_mut(rid).expect("inserted above");
        entry.last = now;
        // A fresh ephemeral key for act two only (any key otherwise: it is not used).
        let ephemeral = if entry.session.awaits_act_one() {
            SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng())
        } else {
            self.config.key
        };
        let step = entry.session.on_message(msg, &self.config.key, ephemeral);
        match step {
            Ok(ServerStep::Reply(act2)) => Inbound::Reply(act2),
            Ok(ServerStep::Authenticated(key)) => {
                let hex = key.serialize().to_lower_hex_string();
                if !self.config.allow.allows(&key) {
                    let addr = entry.addr.clone();
                    self.map.remove(rid);
                    self.refuse(rid, now);
                    crate::lograte::REFUSED_CONNECTIONS.allow(&format!("{}:{addr}", self.bus));
                    tracing::warn!(bus = self.bus, %addr, key = %hex,
                        "refused an encrypted session: the client key is not on the allow-list");
                    return Inbound::Nothing;
                }
                let open_sessions = self.map.values().filter(|e| e.session.is_open()).count();
                if open_sessions > MAX_SESSIONS {
                    // The longest idle session makes room, if it has been idle a while.
                    let idlest = self
                        .map
                        .iter()
                        .filter(|(k, e)| e.session.is_open() && k.as_slice() != rid)
                        .min_by_key(|(_, e)| e.last)
                        .filter(|(_, e)| now.saturating_duration_since(e.last) >= EVICT_IDLE)
                        .map(|(k, _)| k.clone());
                    match idlest {
                        Some(k) => self.end(&k, "evicted: idle while the sessions were all taken"),
                        None => {
                            self.end(rid, "too many open sessions");
                            return Inbound::Nothing;
                        }
                    }
                }
                let entry = self.map.get_mut(rid).expect("still there");
                tracing::info!(bus = self.bus, addr = %entry.addr, key = %hex, "encrypted session open");
                Inbound::Nothing
            }
            Ok(ServerStep::Frames(f)) => Inbound::Frames(f),
            Err(e) => {
                self.end(rid, &e.to_string());
                Inbound::Nothing
            }
        }
    }

    /// Encrypts a bus message for peer `rid`; `None` if it has no open session.
    pub fn seal(&mut self, rid: &[u8], src: &[u8], dst: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
        let entry = self.map.get_mut(rid)?;
        match entry.session.seal(src, dst, payload) {
            Ok(p) => Some(p),
            Err(SessionError::Handshake(_)) => None,
            Err(e) => {
                let why = e.to_string();
                self.end(rid, &why);
                None
            }
        }
    }

    /// Ends handshakes past [`ACT_TIMEOUT`] and sessions idle past [`IDLE_TIMEOUT`].
    pub fn expire(&mut self, now: Instant) {
        let over: Vec<(Vec<u8>, &'static str)> = self
            .map
            .iter()
            .filter_map(|(k, e)| {
                let idle = now.saturating_duration_since(e.last);
                if !e.session.is_open() && idle >= ACT_TIMEOUT {
                    Some((k.clone(), "a handshake act did not come within 5 s"))
                } else if e.session.is_open() && idle >= IDLE_TIMEOUT {
                    Some((k.clone(), "idle"))
                } else {
                    None
                }
            })
            .collect();
        for (k, why) in over {
            self.end(&k, why);
        }
        self.refused
            .retain(|_, t| now.saturating_duration_since(*t) < REFUSED_FOR);
    }

    /// Handshakes in progress and open sessions.
    pub fn counts(&self) -> (usize, usize) {
        let open = self.map.values().filter(|e| e.session.is_open()).count();
        (self.map.len() - open, open)
    }
}
