//! The id of a node: its static key, a compressed secp256k1 public key of 33 bytes, shown as 66
//! hex digits. A client's key on the encrypted API (its static key in the same handshake) is
//! one too. This file is the only place that spells out its bytes; everything else says
//! [`NodeId`].
//!
//! A `NodeId` is bytes: whether they are a point on the curve is checked where it matters
//! ([`NodeId::public_key`]), so that a request with a bad key gets the documented failure
//! rather than a decoding error.

use super::hex_id::hex_id;
use bitcoin::secp256k1::PublicKey;

hex_id!(
    /// A node's id (or a client's key): a compressed secp256k1 public key.
    NodeId,
    33,
    "a node id"
);

impl NodeId {
    /// The public key, if these bytes are one.
    pub fn public_key(&self) -> Option<PublicKey> {
        PublicKey::from_slice(&self.0).ok()
    }

    /// Whether these bytes are a public key.
    pub fn is_key(&self) -> bool {
        self.public_key().is_some()
    }

    /// The first 8 bytes in hex: the part service names and logs show (`peerd-02a1…`).
    pub fn short(&self) -> String {
        self.to_string()[..16].to_string()
    }

    /// Parses 66 hex digits (around them, white space is ignored) that are a public key.
    pub fn parse_key(text: &str) -> Result<NodeId, String> {
        let id: NodeId = text.trim().parse().map_err(|e| format!("{e}"))?;
        if !id.is_key() {
            return Err("not a public key".into());
        }
        Ok(id)
    }
}

impl From<PublicKey> for NodeId {
    fn from(k: PublicKey) -> NodeId {
        NodeId(k.serialize())
    }
}

impl From<&PublicKey> for NodeId {
    fn from(k: &PublicKey) -> NodeId {
        NodeId(k.serialize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn a_key_round_trips_and_only_keys_parse_as_keys() {
        let k = SecretKey::from_slice(&[7; 32])
            .unwrap()
            .public_key(&Secp256k1::new());
        let id = NodeId::from(k);
        assert_eq!(id.public_key(), Some(k));
        assert_eq!(id.to_string(), k.to_string());
        assert_eq!(NodeId::parse_key(&k.to_string()), Ok(id));
        assert_eq!(id.short(), k.to_string()[..16]);
        assert!(NodeId::parse_key(&"05".repeat(33)).is_err(), "not a point");
        assert!(NodeId::parse_key("02").is_err());
        assert!(!NodeId::default().is_key());
    }
}
