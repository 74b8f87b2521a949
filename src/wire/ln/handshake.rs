//! The BOLT-8 handshake driven one act at a time: the one driver of every session that runs
//! it, whatever carries the acts. The Lightning and Bifrost peer sessions take acts from a byte
//! stream ([`Handshake::feed`]); the encrypted bus takes each act as one ZMQ message
//! ([`Handshake::step`]). The states are `bolt8`'s typestate (each holds only what it needs);
//! every step consumes the old state.

use super::bolt8::{
    AwaitingActThree, AwaitingActTwo, Framing, HandshakeError, Initiator, Responder, Transport,
    ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};
use bitcoin::secp256k1::{PublicKey, SecretKey};

/// A handshake under way, waiting for the next act from the peer.
pub enum Handshake {
    /// The responder, waiting for act one.
    ActOne(Responder),
    /// The initiator, waiting for act two.
    ActTwo(AwaitingActTwo),
    /// The responder, waiting for act three.
    ActThree(AwaitingActThree),
}

/// Where a handshake is after an act.
pub enum Progress {
    /// Not enough bytes for the act yet ([`Handshake::feed`] only): nothing was consumed.
    Wait(Handshake),
    /// The act was taken (its answer, if any, is in the output); the next one is awaited.
    Next(Handshake),
    /// The handshake is done.
    Done {
        /// The encrypted transport.
        transport: Transport,
        /// The peer's static key, learnt from act three (the responder's case); `None` for the
        /// initiator, which dialled a key it knew.
        learnt: Option<PublicKey>,
    },
}

impl Handshake {
    /// Starts a handshake with the node whose static key is `remote`, as `local`: act one is
    /// appended to `out`.
    pub fn initiate(
        local: SecretKey,
        remote: PublicKey,
        ephemeral: SecretKey,
        framing: Framing,
        out: &mut Vec<u8>,
    ) -> Handshake {
        let (act, next) = Initiator::new(local, remote, ephemeral).act_one(framing);
        out.extend_from_slice(&act);
        Handshake::ActTwo(next)
    }

    /// Waits for a handshake to `local`.
    pub fn respond(local: SecretKey, ephemeral: SecretKey, framing: Framing) -> Handshake {
        Handshake::ActOne(Responder::new(local, ephemeral, framing))
    }

    /// The length of the act awaited.
    pub fn act_len(&self) -> usize {
        match self {
            Handshake::ActOne(_) => ACT_ONE_LEN,
            Handshake::ActTwo(_) => ACT_TWO_LEN,
            Handshake::ActThree(_) => ACT_THREE_LEN,
        }
    }

    /// The act awaited, for messages: "act one", "act two", "act three".
    pub fn awaited(&self) -> &'static str {
        match self {
            Handshake::ActOne(_) => "act one",
            Handshake::ActTwo(_) => "act two",
            Handshake::ActThree(_) => "act three",
        }
    }

    /// Takes one whole act (`act` must be exactly [`Handshake::act_len`] bytes, else the act is
    /// refused as short); its answer (act two, act three) is appended to `out`.
    pub fn step(self, act: &[u8], out: &mut Vec<u8>) -> Result<Progress, HandshakeError> {
        Ok(match self {
            Handshake::ActOne(r) => {
                let (reply, next) = r.act_one(act)?;
                out.extend_from_slice(&reply);
                Progress::Next(Handshake::ActThree(next))
            }
            Handshake::ActTwo(i) => {
                let (reply, transport) = i.act_two(act)?;
                out.extend_from_slice(&reply);
                Progress::Done {
                    transport,
                    learnt: None,
                }
            }
            Handshake::ActThree(r) => {
                let (transport, remote) = r.act_three(act)?;
                Progress::Done {
                    transport,
                    learnt: Some(remote),
                }
            }
        })
    }

    /// Takes the awaited act from the front of `buf` once all of it is there (a stream of
    /// bytes); with fewer bytes, nothing is consumed ([`Progress::Wait`]).
    pub fn feed(self, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<Progress, HandshakeError> {
        let len = self.act_len();
        if buf.len() < len {
            return Ok(Progress::Wait(self));
        }
        let act: Vec<u8> = buf.drain(..len).collect();
        self.step(&act, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::Secp256k1;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }

    #[test]
    fn both_sides_reach_the_same_transport_fed_a_byte_at_a_time() {
        let secp = Secp256k1::new();
        let (i_key, r_key) = (key(1), key(2));
        let mut to_r = Vec::new();
        let mut i = Handshake::initiate(
            i_key,
            r_key.public_key(&secp),
            key(3),
            Framing::Brontide,
            &mut to_r,
        );
        let mut r = Handshake::respond(r_key, key(4), Framing::Brontide);
        assert_eq!((r.awaited(), r.act_len()), ("act one", 50));
        // The responder gets act one byte by byte: it waits until the act is whole.
        let mut buf = Vec::new();
        let mut to_i = Vec::new();
        for b in to_r.drain(..) {
            buf.push(b);
            r = match r.feed(&mut buf, &mut to_i).unwrap() {
                Progress::Wait(r) | Progress::Next(r) => r,
                Progress::Done { .. } => panic!("too early"),
            };
        }
        assert!(buf.is_empty());
        assert_eq!(r.awaited(), "act three");
        let Progress::Done {
            transport: mut ti,
            learnt,
        } = i.step(&to_i, &mut to_r).unwrap()
        else {
            panic!("the initiator is done after act two")
        };
        assert_eq!(learnt, None);
        let Progress::Done {
            transport: mut tr,
            learnt,
        } = r.step(&to_r, &mut Vec::new()).unwrap()
        else {
            panic!("the responder is done after act three")
        };
        assert_eq!(learnt, Some(i_key.public_key(&secp)));
        let mut wire = ti.encrypt(b"hello").unwrap();
        assert_eq!(tr.decrypt(&mut wire).unwrap().unwrap(), b"hello");
        i = Handshake::initiate(
            i_key,
            r_key.public_key(&secp),
            key(5),
            Framing::Brontide,
            &mut Vec::new(),
        );
        assert_eq!(i.awaited(), "act two");
    }

    #[test]
    fn a_bad_or_short_act_fails() {
        let r = Handshake::respond(key(2), key(4), Framing::Brontozaur);
        assert!(matches!(
            r.step(&[0; 49], &mut Vec::new()),
            Err(HandshakeError::ShortRead { act: 1, .. })
        ));
        let r = Handshake::respond(key(2), key(4), Framing::Brontozaur);
        let mut act = vec![1u8; 50];
        assert!(matches!(
            r.feed(&mut act, &mut Vec::new()),
            Err(HandshakeError::BadVersion { act: 1, version: 1 })
        ));
    }
}
