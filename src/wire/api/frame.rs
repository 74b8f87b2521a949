//! The three-frame layout `[src, dst, payload]` of every bus message (docs/API.md section 2):
//! `payload` = `type: u16 LE` ‖ `request_id: u64 LE` ‖ the strict-encoded body of that type.
//! Decoding says, on failure, whether (and with which request id) a failure can be answered.

use super::{code, Code, Msg, ServiceId};
use crate::wire::strict::{self, Reader, Strict, StrictError};
use std::fmt;

/// Encodes a payload frame for `msg` answering `request_id` (used where no valid ids exist, e.g.
/// to answer a message whose id frames did not decode).
pub fn payload_of(request_id: u64, msg: &Msg) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&msg.type_id().to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    if msg.encode_body(&mut out).is_err() {
        // Only over-long text can fail; failures are truncated when built, so this is a
        // message of ours that must still say something.
        out.truncate(10);
        out.extend_from_slice(&[0, 0]);
    }
    out
}

/// A message with its addressing, as carried between services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Sender.
    pub src: ServiceId,
    /// Destination.
    pub dst: ServiceId,
    /// Request id chosen by the requester and echoed by every reply (0 for one-way messages
    /// that belong to no request).
    pub request_id: u64,
    /// The message.
    pub msg: Msg,
}

impl Envelope {
    /// Builds the reply to this envelope: source and destination swapped, same request id.
    pub fn reply(&self, msg: Msg) -> Envelope {
        Envelope {
            src: self.dst.clone(),
            dst: self.src.clone(),
            request_id: self.request_id,
            msg,
        }
    }

    /// Encodes the payload frame (`type ‖ request_id ‖ body`).
    pub fn encode_payload(&self) -> Result<Vec<u8>, StrictError> {
        let mut out = Vec::with_capacity(64);
        self.msg.type_id().strict_encode(&mut out)?;
        self.request_id.strict_encode(&mut out)?;
        self.msg.encode_body(&mut out)?;
        Ok(out)
    }

    /// Encodes the three frames `[src, dst, payload]`.
    pub fn encode_frames(&self) -> Result<[Vec<u8>; 3], StrictError> {
        Ok([
            strict::serialize(&self.src)?,
            strict::serialize(&self.dst)?,
            self.encode_payload()?,
        ])
    }

    /// Decodes the three frames of a message received on a bus socket. On failure the error
    /// says whether (and with which request id) a failure reply can be sent back.
    pub fn decode_frames(frames: &[Vec<u8>]) -> Result<Envelope, FrameError> {
        if frames.len() != 3 {
            return Err(FrameError::FrameCount(frames.len()));
        }
        let payload = &frames[2];
        let mut r = Reader::new(payload);
        let header = u16::strict_decode(&mut r).and_then(|t| Ok((t, u64::strict_decode(&mut r)?)));
        let (type_id, request_id) = match header {
            Ok(h) => h,
            Err(err) => {
                return Err(FrameError::Payload {
                    request_id: 0,
                    code: code::MALFORMED,
                    reason: format!("payload header: {err}"),
                })
            }
        };
        let bad = |code, reason: String| FrameError::Payload {
            request_id,
            code,
            reason,
        };
        let src = ServiceId::from_bytes(&frames[0])
            .map_err(|e| bad(code::MALFORMED, format!("source frame: {e}")))?;
        let dst = ServiceId::from_bytes(&frames[1])
            .map_err(|e| bad(code::MALFORMED, format!("destination frame: {e}")))?;
        let msg = Msg::decode_body(type_id, &mut r).map_err(|e| match e {
            BodyError::UnknownType(t) => {
                bad(code::UNKNOWN_TYPE, format!("unknown type id {t:#06x}"))
            }
            BodyError::Strict(e @ StrictError::ExceedMaxItems { .. }) => {
                bad(code::TOO_LARGE, format!("type {type_id:#06x}: {e}"))
            }
            BodyError::Strict(e @ StrictError::NotAllowed { .. }) => {
                bad(code::INVALID_ARGUMENT, format!("type {type_id:#06x}: {e}"))
            }
            BodyError::Strict(e) => bad(code::MALFORMED, format!("type {type_id:#06x}: {e}")),
        })?;
        Ok(Envelope {
            src,
            dst,
            request_id,
            msg,
        })
    }
}

/// Why a message body did not decode.
#[derive(Debug)]
pub enum BodyError {
    /// No message has this type id.
    UnknownType(u16),
    /// The body is bad (truncated, over a limit, trailing bytes).
    Strict(StrictError),
}

impl From<StrictError> for BodyError {
    fn from(e: StrictError) -> Self {
        BodyError::Strict(e)
    }
}

/// Why frames received on a bus socket were not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not exactly three frames: dropped (the layout of a reply is unknown).
    FrameCount(usize),
    /// Three frames, but the content is bad: answer with a failure carrying `request_id`
    /// (0 when the payload header itself was unreadable).
    Payload {
        /// The request id read from the payload header, or 0.
        request_id: u64,
        /// One of [`code`].
        code: Code,
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::FrameCount(n) => write!(f, "expected 3 frames, got {n}"),
            FrameError::Payload { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for FrameError {}

/// Test helpers shared by the message sets of every node.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Encodes `msg` in frames and decodes it back: it must come out equal.
    pub fn roundtrip(msg: Msg) {
        let env = Envelope {
            src: ServiceId::Client(0x0102030405060708),
            dst: ServiceId::Lnpd,
            request_id: 42,
            msg,
        };
        let frames = env.encode_frames().unwrap();
        assert_eq!(Envelope::decode_frames(&frames).unwrap(), env);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::roundtrip;
    use super::*;

    #[test]
    fn success_without_text_roundtrips() {
        // Every type id has a sample in wire/api/samples.rs (round-tripped there); these are the
        // other shapes of a body.
        roundtrip(Msg::Success(None));
        roundtrip(Msg::Failure {
            code: code::TIMEOUT,
            message: String::new(),
        });
    }

    #[test]
    fn documented_bytes() {
        // The example of docs/API.md: client 1 asks lnpd for info with request id 7.
        let env = Envelope {
            src: ServiceId::Client(1),
            dst: ServiceId::Lnpd,
            request_id: 7,
            msg: Msg::GetInfo,
        };
        let [src, dst, payload] = env.encode_frames().unwrap();
        assert_eq!(src, [0x02, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dst, [0x20]);
        assert_eq!(payload, [0x00, 0x01, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            ServiceId::named("ext").unwrap().to_bytes(),
            [0xff, 3, 0, b'e', b'x', b't']
        );
    }

    #[test]
    fn bad_frames_say_how_to_answer() {
        let good = Envelope {
            src: ServiceId::Client(1),
            dst: ServiceId::Lnpd,
            request_id: 9,
            msg: Msg::GetInfo,
        }
        .encode_frames()
        .unwrap()
        .to_vec();
        assert_eq!(
            Envelope::decode_frames(&good[..2]),
            Err(FrameError::FrameCount(2))
        );
        let mut unknown = good.clone();
        unknown[2][0] = 0x77;
        assert!(matches!(
            Envelope::decode_frames(&unknown),
            Err(FrameError::Payload {
                request_id: 9,
                code: code::UNKNOWN_TYPE,
                ..
            })
        ));
        let mut trailing = good.clone();
        trailing[2].push(0);
        assert!(matches!(
            Envelope::decode_frames(&trailing),
            Err(FrameError::Payload {
                request_id: 9,
                code: code::MALFORMED,
                ..
            })
        ));
        let mut short = good.clone();
        short[2].truncate(5);
        assert!(matches!(
            Envelope::decode_frames(&short),
            Err(FrameError::Payload {
                request_id: 0,
                code: code::MALFORMED,
                ..
            })
        ));
        let mut bad_src = good.clone();
        bad_src[0] = vec![0x99];
        assert!(matches!(
            Envelope::decode_frames(&bad_src),
            Err(FrameError::Payload {
                request_id: 9,
                code: code::MALFORMED,
                ..
            })
        ));
        // A service name declared longer than the limit.
        let mut crash = Envelope {
            src: ServiceId::Client(1),
            dst: ServiceId::Lnpd,
            request_id: 3,
            msg: Msg::DebugCrash {
                service: "x".into(),
            },
        }
        .encode_frames()
        .unwrap()
        .to_vec();
        crash[2].truncate(10);
        crash[2].extend_from_slice(&[0xff, 0xff]);
        assert!(matches!(
            Envelope::decode_frames(&crash),
            Err(FrameError::Payload {
                request_id: 3,
                code: code::TOO_LARGE,
                ..
            })
        ));
    }
}
