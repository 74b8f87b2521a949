//! Containers peers offered us (`AnnounceContainer`), kept in memory until `accept_container`
//! (or accepted at once for a node id of `[storm] auto_accept`). Bounded per peer, in count and
//! in announced bytes, and in all: a peer cannot fill the node with announcements.

use crate::wire::api::storm::{TransferInfo, TransferState};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ContainerHeader, ContainerId};
use crate::wire::storm::p2p::MessageId;
use std::collections::BTreeMap;

/// Most offers kept from all peers together.
pub const MAX_OFFERS: usize = 1024;

/// One offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Who offered it.
    pub peer: NodeId,
    /// The Storm app it is meant for.
    pub app: u16,
    /// The announcement's message id.
    pub message_id: MessageId,
    /// The announced header.
    pub header: ContainerHeader,
}

impl Offer {
    /// As `transfers` lists it.
    pub fn info(&self, id: &ContainerId) -> TransferInfo {
        TransferInfo {
            container_id: *id,
            peer: self.peer,
            app: self.app,
            state: TransferState::Offered,
            size: self.header.size,
            chunks: 0,
            have: 0,
            had: 0,
            fetched: 0,
            served: 0,
            note: String::new(),
        }
    }
}

/// The per-peer bounds (`[storm]`).
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Offers kept per peer.
    pub per_peer: usize,
    /// Announced bytes of the offers kept per peer.
    pub bytes_per_peer: u64,
}

/// The offers, by container.
#[derive(Default)]
pub struct Offers {
    map: BTreeMap<ContainerId, Offer>,
}

impl Offers {
    /// Whether `id` is offered.
    pub fn contains(&self, id: &ContainerId) -> bool {
        self.map.contains_key(id)
    }

    /// Takes the offer of `id` (to accept it).
    pub fn take(&mut self, id: &ContainerId) -> Option<Offer> {
        self.map.remove(id)
    }

    /// Keeps `offer` of `id`, unless its peer is at its bounds or all offers are taken: then
    /// why not.
    pub fn keep(&mut self, id: ContainerId, offer: Offer, caps: Caps) -> Result<(), String> {
        let (n, bytes) = self
            .map
            .values()
            .filter(|o| o.peer == offer.peer)
            .fold((0usize, 0u64), |(n, b), o| (n + 1, b + o.header.size));
        if n >= caps.per_peer
            || bytes + offer.header.size > caps.bytes_per_peer
            || self.map.len() >= MAX_OFFERS
        {
            return Err(format!(
                "an offer dropped: the peer has {n} offers of {bytes} bytes waiting (at most {} and {})",
                caps.per_peer, caps.bytes_per_peer
            ));
        }
        self.map.insert(id, offer);
        Ok(())
    }

    /// Every offer, as `transfers` lists them.
    pub fn list(&self) -> impl Iterator<Item = TransferInfo> + '_ {
        self.map.iter().map(|(id, o)| o.info(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(peer: u8, size: u64) -> Offer {
        Offer {
            peer: NodeId([peer; 33]),
            app: 2,
            message_id: MessageId([0; 32]),
            header: ContainerHeader {
                version: 0,
                mime: String::new(),
                info: String::new(),
                size,
            },
        }
    }

    #[test]
    fn offers_are_bounded_per_peer_in_count_and_bytes() {
        let caps = Caps {
            per_peer: 2,
            bytes_per_peer: 100,
        };
        let mut o = Offers::default();
        o.keep(ContainerId([1; 32]), offer(1, 40), caps).unwrap();
        o.keep(ContainerId([2; 32]), offer(1, 40), caps).unwrap();
        let why = o.keep(ContainerId([3; 32]), offer(1, 1), caps).unwrap_err();
        assert!(why.contains("2 offers of 80 bytes"), "{why}");
        // Another peer has its own share; bytes count too.
        o.keep(ContainerId([4; 32]), offer(2, 100), caps).unwrap();
        assert!(o.keep(ContainerId([5; 32]), offer(2, 1), caps).is_err());
        assert!(o.keep(ContainerId([6; 32]), offer(3, 101), caps).is_err());
        assert_eq!(o.list().count(), 3);
        assert!(o.take(&ContainerId([1; 32])).is_some());
        o.keep(ContainerId([3; 32]), offer(1, 1), caps).unwrap();
        assert!(o.contains(&ContainerId([3; 32])));
    }
}
