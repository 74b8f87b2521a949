//! The channel messages at the peer boundary: the BOLT-2 (and BOLT-7 `channel_update`,
//! `announcement_signatures`) messages that `peerd` hands to `channeld`, decoded into LDK's
//! structures, and what LDK gives back to send, encoded.
//!
//! LDK's own reader (`lightning::ln::wire::read`) is private, so the map from type id to
//! structure is here. Each message decodes from its payload (after the 2-byte type) with LDK's
//! `LengthReadable` over a buffer of at most 65,533 bytes (a BOLT-8 message), so no length a
//! peer writes can make it read past the message. The fuzz target `ln_channel_msg` runs
//! [`decode`] on arbitrary bytes.

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::{self, ChannelMessageHandler, DecodeError, MessageSendEvent};
use lightning::ln::wire::Type;
use lightning::util::ser::LengthReadable;

/// The largest payload of a Lightning message (65,535 bytes less the type).
pub const MAX_PAYLOAD: usize = 65_533;

macro_rules! channel_messages {
    ($($id:literal => $var:ident($ty:ty)),* $(,)?) => {
        /// A channel message for LDK's `ChannelMessageHandler`. (One lives at a time, from its
        /// decoding to its dispatch: its size does not matter.)
        #[derive(Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum ChannelMsg {
            $(
                #[allow(missing_docs)]
                $var($ty),
            )*
        }

        /// The type ids `channeld` takes from its peers.
        pub const TYPES: &[u16] = &[$($id),*];

        impl ChannelMsg {
            /// Its type and payload, as LDK writes them.
            pub fn encode(&self) -> (u16, Vec<u8>) {
                match self {
                    $(ChannelMsg::$var(m) => ($id, lightning::util::ser::Writeable::encode(m)),)*
                }
            }
        }

        /// Decodes the payload of a message of type `type_id` (one of [`TYPES`]).
        pub fn decode(type_id: u16, payload: &[u8]) -> Result<ChannelMsg, String> {
            if payload.len() > MAX_PAYLOAD {
                return Err(format!("a payload of {} bytes is above {MAX_PAYLOAD}", payload.len()));
            }
            let mut r = payload;
            let m = match type_id {
                $($id => ChannelMsg::$var(read(&mut r)?),)*
                t => return Err(format!("type {t} is not a channel message")),
            };
            Ok(m)
        }
    };
}

channel_messages! {
    2 => Stfu(msgs::Stfu),
    7 => PeerStorage(msgs::PeerStorage),
    9 => PeerStorageRetrieval(msgs::PeerStorageRetrieval),
    17 => Error(msgs::ErrorMessage),
    32 => OpenChannel(msgs::OpenChannel),
    33 => AcceptChannel(msgs::AcceptChannel),
    34 => FundingCreated(msgs::FundingCreated),
    35 => FundingSigned(msgs::FundingSigned),
    36 => ChannelReady(msgs::ChannelReady),
    38 => Shutdown(msgs::Shutdown),
    39 => ClosingSigned(msgs::ClosingSigned),
    64 => OpenChannelV2(msgs::OpenChannelV2),
    65 => AcceptChannelV2(msgs::AcceptChannelV2),
    66 => TxAddInput(msgs::TxAddInput),
    67 => TxAddOutput(msgs::TxAddOutput),
    68 => TxRemoveInput(msgs::TxRemoveInput),
    69 => TxRemoveOutput(msgs::TxRemoveOutput),
    70 => TxComplete(msgs::TxComplete),
    71 => TxSignatures(msgs::TxSignatures),
    72 => TxInitRbf(msgs::TxInitRbf),
    73 => TxAckRbf(msgs::TxAckRbf),
    74 => TxAbort(msgs::TxAbort),
    77 => SpliceLocked(msgs::SpliceLocked),
    80 => SpliceInit(msgs::SpliceInit),
    81 => SpliceAck(msgs::SpliceAck),
    128 => UpdateAddHtlc(msgs::UpdateAddHTLC),
    130 => UpdateFulfillHtlc(msgs::UpdateFulfillHTLC),
    131 => UpdateFailHtlc(msgs::UpdateFailHTLC),
    132 => CommitmentSigned(msgs::CommitmentSigned),
    133 => RevokeAndAck(msgs::RevokeAndACK),
    134 => UpdateFee(msgs::UpdateFee),
    135 => UpdateFailMalformedHtlc(msgs::UpdateFailMalformedHTLC),
    136 => ChannelReestablish(msgs::ChannelReestablish),
    258 => ChannelUpdate(msgs::ChannelUpdate),
    259 => AnnouncementSignatures(msgs::AnnouncementSignatures),
}

/// The gossip messages (BOLT-7) we take and drop: no gossip is kept in this version, and
/// BOLT-7 lets a node ignore it.
pub const GOSSIP: &[u16] = &[256, 257, 261, 262, 263, 264, 265];

fn read<T: LengthReadable>(r: &mut &[u8]) -> Result<T, String> {
    T::read_from_fixed_length_buffer(r).map_err(|e: DecodeError| format!("{e:?}"))
}

/// Hands `msg` from `node` to `h`.
pub fn dispatch<H: ChannelMessageHandler>(h: &H, node: PublicKey, msg: ChannelMsg) {
    use ChannelMsg::*;
    match msg {
        Stfu(m) => h.handle_stfu(node, &m),
        PeerStorage(m) => h.handle_peer_storage(node, m),
        PeerStorageRetrieval(m) => h.handle_peer_storage_retrieval(node, m),
        Error(m) => h.handle_error(node, &m),
        OpenChannel(m) => h.handle_open_channel(node, &m),
        AcceptChannel(m) => h.handle_accept_channel(node, &m),
        FundingCreated(m) => h.handle_funding_created(node, &m),
        FundingSigned(m) => h.handle_funding_signed(node, &m),
        ChannelReady(m) => h.handle_channel_ready(node, &m),
        Shutdown(m) => h.handle_shutdown(node, &m),
        ClosingSigned(m) => h.handle_closing_signed(node, &m),
        OpenChannelV2(m) => h.handle_open_channel_v2(node, &m),
        AcceptChannelV2(m) => h.handle_accept_channel_v2(node, &m),
        TxAddInput(m) => h.handle_tx_add_input(node, &m),
        TxAddOutput(m) => h.handle_tx_add_output(node, &m),
        TxRemoveInput(m) => h.handle_tx_remove_input(node, &m),
        TxRemoveOutput(m) => h.handle_tx_remove_output(node, &m),
        TxComplete(m) => h.handle_tx_complete(node, &m),
        TxSignatures(m) => h.handle_tx_signatures(node, &m),
        TxInitRbf(m) => h.handle_tx_init_rbf(node, &m),
        TxAckRbf(m) => h.handle_tx_ack_rbf(node, &m),
        TxAbort(m) => h.handle_tx_abort(node, &m),
        SpliceLocked(m) => h.handle_splice_locked(node, &m),
        SpliceInit(m) => h.handle_splice_init(node, &m),
        SpliceAck(m) => h.handle_splice_ack(node, &m),
        UpdateAddHtlc(m) => h.handle_update_add_htlc(node, &m),
        UpdateFulfillHtlc(m) => h.handle_update_fulfill_htlc(node, m),
        UpdateFailHtlc(m) => h.handle_update_fail_htlc(node, &m),
        CommitmentSigned(m) => h.handle_commitment_signed(node, &m),
        RevokeAndAck(m) => h.handle_revoke_and_ack(node, &m),
        UpdateFee(m) => h.handle_update_fee(node, &m),
        UpdateFailMalformedHtlc(m) => h.handle_update_fail_malformed_htlc(node, &m),
        ChannelReestablish(m) => h.handle_channel_reestablish(node, &m),
        ChannelUpdate(m) => h.handle_channel_update(node, &m),
        AnnouncementSignatures(m) => h.handle_announcement_signatures(node, &m),
    }
}

/// What to do with a peer, from LDK's message events.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// Send this message (type, payload).
    Send(PublicKey, u16, Vec<u8>),
    /// Close the connection (after a last message, if any: an `error` or a `warning`).
    Disconnect(PublicKey, String),
}

fn send<M: Type>(out: &mut Vec<Out>, node: &PublicKey, m: &M) {
    out.push(Out::Send(*node, m.type_id(), m.encode()));
}

/// The messages and disconnections of LDK's `events`, in order. Gossip to broadcast (we
/// announce no channel) and gossip queries are dropped.
pub fn encode(events: Vec<MessageSendEvent>) -> Vec<Out> {
    use msgs::ErrorAction;
    use MessageSendEvent::*;
    let mut out = Vec::new();
    for ev in events {
        match ev {
            SendAcceptChannel { node_id, msg } => send(&mut out, &node_id, &msg),
            SendAcceptChannelV2 { node_id, msg } => send(&mut out, &node_id, &msg),
            SendOpenChannel { node_id, msg } => send(&mut out, &node_id, &msg),
            SendOpenChannelV2 { node_id, msg } => send(&mut out, &node_id, &msg),
            SendFundingCreated { node_id, msg } => send(&mut out, &node_id, &msg),
            SendFundingSigned { node_id, msg } => send(&mut out, &node_id, &msg),
            SendStfu { node_id, msg } => send(&mut out, &node_id, &msg),
            SendSpliceInit { node_id, msg } => send(&mut out, &node_id, &msg),
            SendSpliceAck { node_id, msg } => send(&mut out, &node_id, &msg),
            SendSpliceLocked { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxAddInput { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxAddOutput { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxRemoveInput { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxRemoveOutput { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxComplete { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxSignatures { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxInitRbf { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxAckRbf { node_id, msg } => send(&mut out, &node_id, &msg),
            SendTxAbort { node_id, msg } => send(&mut out, &node_id, &msg),
            SendChannelReady { node_id, msg } => send(&mut out, &node_id, &msg),
            SendAnnouncementSignatures { node_id, msg } => send(&mut out, &node_id, &msg),
            UpdateHTLCs {
                node_id, updates, ..
            } => {
                for m in &updates.update_add_htlcs {
                    send(&mut out, &node_id, m);
                }
                for m in &updates.update_fulfill_htlcs {
                    send(&mut out, &node_id, m);
                }
                for m in &updates.update_fail_htlcs {
                    send(&mut out, &node_id, m);
                }
                for m in &updates.update_fail_malformed_htlcs {
                    send(&mut out, &node_id, m);
                }
                if let Some(m) = &updates.update_fee {
                    send(&mut out, &node_id, m);
                }
                for m in &updates.commitment_signed {
                    send(&mut out, &node_id, m);
                }
            }
            SendRevokeAndACK { node_id, msg } => send(&mut out, &node_id, &msg),
            SendClosingSigned { node_id, msg } => send(&mut out, &node_id, &msg),
            SendClosingComplete { .. } | SendClosingSig { .. } => {}
            SendShutdown { node_id, msg } => send(&mut out, &node_id, &msg),
            SendChannelReestablish { node_id, msg } => send(&mut out, &node_id, &msg),
            SendChannelUpdate { node_id, msg } => send(&mut out, &node_id, &msg),
            SendPeerStorage { node_id, msg } => send(&mut out, &node_id, &msg),
            SendPeerStorageRetrieval { node_id, msg } => send(&mut out, &node_id, &msg),
            HandleError { node_id, action } => match action {
                ErrorAction::DisconnectPeer { msg } => {
                    let why = msg.as_ref().map(|m| m.data.clone()).unwrap_or_default();
                    if let Some(m) = &msg {
                        send(&mut out, &node_id, m);
                    }
                    out.push(Out::Disconnect(node_id, why));
                }
                ErrorAction::DisconnectPeerWithWarning { msg } => {
                    send(&mut out, &node_id, &msg);
                    out.push(Out::Disconnect(node_id, msg.data.clone()));
                }
                ErrorAction::SendErrorMessage { msg } => send(&mut out, &node_id, &msg),
                ErrorAction::SendWarningMessage { msg, .. } => send(&mut out, &node_id, &msg),
                ErrorAction::IgnoreError
                | ErrorAction::IgnoreAndLog(_)
                | ErrorAction::IgnoreDuplicateGossip => {}
            },
            SendChannelAnnouncement { .. }
            | BroadcastChannelAnnouncement { .. }
            | BroadcastChannelUpdate { .. }
            | BroadcastNodeAnnouncement { .. }
            | SendChannelRangeQuery { .. }
            | SendShortIdsQuery { .. }
            | SendReplyChannelRange { .. }
            | SendGossipTimestampFilter { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_payloads_are_errors() {
        for &t in TYPES {
            assert!(
                decode(t, &[]).is_err() || t == 70 || t == 2,
                "type {t} decoded from nothing"
            );
            assert!(decode(t, &[0xff; 3]).is_err(), "type {t}");
        }
        assert!(decode(1000, &[]).is_err());
        assert!(decode(32, &vec![0; MAX_PAYLOAD + 1]).is_err());
    }
}
