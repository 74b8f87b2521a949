//! Strict encoding, as de-facto specified by `strict_encoding` 0.9 (docs/API.md section 4).
//!
//! Rules: little-endian fixed-width integers; `bool` is one byte 0/1; every length or count is
//! a u16 LE; `Option<T>` is a u8 tag 0/1 then `T`; fixed arrays are raw bytes; structs are their
//! fields in order. A decoder must consume its whole input.
//!
//! Decoding never sizes an allocation from a number read off the wire without first checking
//! that the remaining input can hold that many items (docs/ARCHITECTURE.md, "Limits").

use std::fmt;

/// Largest length or count strict encoding can express (`usize` is a u16 on the wire).
pub const MAX_LEN: usize = u16::MAX as usize;

/// Why a value could not be strict-encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrictError {
    /// The input ended before the value did: `needed` more bytes were required.
    UnexpectedEof {
        /// How many bytes were missing.
        needed: usize,
    },
    /// A collection or string longer than `max` items (65535, or a tighter protocol limit).
    ExceedMaxItems {
        /// The declared or actual length.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// An `Option` tag other than 0 or 1.
    WrongOptionalEncoding(u8),
    /// A `bool` byte other than 0 or 1.
    InvalidBool(u8),
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// An enum tag with no variant.
    UnknownTag {
        /// Which type was being decoded.
        ty: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// A value that is well-formed but not acceptable (e.g. a zero-length identifier).
    InvalidValue(&'static str),
    /// A field's value outside the closed set it takes: a well-formed request asking for
    /// something that does not exist (answered as an invalid argument, not as malformed).
    NotAllowed {
        /// The field.
        field: &'static str,
        /// The value read.
        value: u8,
        /// What it may be.
        allowed: &'static str,
    },
    /// Bytes were left after the value: `left` of them.
    DataNotEntirelyConsumed {
        /// How many bytes were left over.
        left: usize,
    },
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::UnexpectedEof { needed } => {
                write!(f, "truncated data: {needed} more byte(s) expected")
            }
            StrictError::ExceedMaxItems { len, max } => {
                write!(f, "length {len} exceeds the limit of {max}")
            }
            StrictError::WrongOptionalEncoding(t) => write!(f, "invalid option tag {t:#04x}"),
            StrictError::InvalidBool(b) => write!(f, "invalid bool byte {b:#04x}"),
            StrictError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            StrictError::UnknownTag { ty, tag } => write!(f, "unknown {ty} tag {tag:#04x}"),
            StrictError::InvalidValue(what) => write!(f, "invalid value: {what}"),
            StrictError::NotAllowed {
                field,
                value,
                allowed,
            } => write!(f, "{field} {value} is not one of {allowed}"),
            StrictError::DataNotEntirelyConsumed { left } => {
                write!(f, "{left} trailing byte(s) after the message")
            }
        }
    }
}

impl std::error::Error for StrictError {}

/// A cursor over input bytes; every read checks the remaining length first.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes, or fails without consuming anything.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], StrictError> {
        if self.remaining() < n {
            return Err(StrictError::UnexpectedEof {
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], StrictError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a u16 length and checks it against `max` and against the bytes left
    /// (each item takes at least `min_item` bytes) before anything is allocated.
    pub fn len_prefix(&mut self, max: usize, min_item: usize) -> Result<usize, StrictError> {
        let len = u16::strict_decode(self)? as usize;
        if len > max {
            return Err(StrictError::ExceedMaxItems { len, max });
        }
        let needed = len.saturating_mul(min_item);
        if needed > self.remaining() {
            return Err(StrictError::UnexpectedEof {
                needed: needed - self.remaining(),
            });
        }
        Ok(len)
    }

    /// Fails if any byte is left.
    pub fn finish(&self) -> Result<(), StrictError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(StrictError::DataNotEntirelyConsumed { left }),
        }
    }
}

/// A value with a strict encoding.
pub trait Strict: Sized {
    /// Smallest number of bytes an encoded value takes (used to bound counts before allocating).
    const MIN_SIZE: usize;
    /// Appends the encoding of `self` to `out`.
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError>;
    /// Reads one value.
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError>;
}

/// Encodes a value into a new buffer.
pub fn serialize<T: Strict>(value: &T) -> Result<Vec<u8>, StrictError> {
    let mut out = Vec::new();
    value.strict_encode(&mut out)?;
    Ok(out)
}

/// Decodes a value that must take the whole of `bytes`.
pub fn deserialize<T: Strict>(bytes: &[u8]) -> Result<T, StrictError> {
    let mut r = Reader::new(bytes);
    let value = T::strict_decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

macro_rules! impl_int {
    ($($t:ty),*) => {$(
        impl Strict for $t {
            const MIN_SIZE: usize = std::mem::size_of::<$t>();
            fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
                out.extend_from_slice(&self.to_le_bytes());
                Ok(())
            }
            fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
impl_int!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Strict for bool {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        out.push(*self as u8);
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(StrictError::InvalidBool(b)),
        }
    }
}

impl<const N: usize> Strict for [u8; N] {
    const MIN_SIZE: usize = N;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        out.extend_from_slice(self);
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        r.array()
    }
}

impl<T: Strict> Strict for Option<T> {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.strict_encode(out)?;
            }
        }
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(None),
            1 => Ok(Some(T::strict_decode(r)?)),
            t => Err(StrictError::WrongOptionalEncoding(t)),
        }
    }
}

/// Writes a u16 length prefix, failing above `max`.
pub fn encode_len(len: usize, max: usize, out: &mut Vec<u8>) -> Result<(), StrictError> {
    if len > max.min(MAX_LEN) {
        return Err(StrictError::ExceedMaxItems {
            len,
            max: max.min(MAX_LEN),
        });
    }
    (len as u16).strict_encode(out)
}

impl<T: Strict> Strict for Vec<T> {
    const MIN_SIZE: usize = 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_len(self.len(), MAX_LEN, out)?;
        self.iter().try_for_each(|item| item.strict_encode(out))
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let len = r.len_prefix(MAX_LEN, T::MIN_SIZE.max(1))?;
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(T::strict_decode(r)?);
        }
        Ok(out)
    }
}

impl Strict for String {
    const MIN_SIZE: usize = 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_len(self.len(), MAX_LEN, out)?;
        out.extend_from_slice(self.as_bytes());
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        decode_string(r, MAX_LEN)
    }
}

/// Encodes `bytes` with a u16 LE length (strict encoding 0.9's `Vec<u8>`), at most `max`.
pub fn encode_bytes(b: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(b.len(), max, out)?;
    out.extend_from_slice(b);
    Ok(())
}

/// Decodes `bytes` with a u16 LE length, at most `max`, checked before allocating.
pub fn decode_bytes(r: &mut Reader<'_>, max: usize) -> Result<Vec<u8>, StrictError> {
    let n = r.len_prefix(max, 1)?;
    Ok(r.take(n)?.to_vec())
}

/// Decodes a string of at most `max` bytes (a protocol may be tighter than 65535).
pub fn decode_string(r: &mut Reader<'_>, max: usize) -> Result<String, StrictError> {
    let len = r.len_prefix(max, 1)?;
    let bytes = r.take(len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| StrictError::InvalidUtf8)
}

/// Encodes a string, failing above `max` bytes.
pub fn encode_string(s: &str, max: usize, out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(s.len(), max, out)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Vectors of the strict_encoding 0.9 crate's own tests.
    #[test]
    fn integer_vectors() {
        assert_eq!(hex(&serialize(&0x45a6u16).unwrap()), "a645");
        assert_eq!(hex(&serialize(&0x56fe45a6u32).unwrap()), "a645fe56");
        assert_eq!(
            hex(&serialize(&0xcafedead56fe45a6u64).unwrap()),
            "a645fe56addefeca"
        );
        assert_eq!(hex(&serialize(&-0x7fi8).unwrap()), "81");
        assert_eq!(
            deserialize::<u64>(&serialize(&0xcafedead56fe45a6u64).unwrap()).unwrap(),
            0xcafedead56fe45a6
        );
        assert_eq!(deserialize::<i8>(&[0x81]).unwrap(), -0x7f);
    }

    #[test]
    fn option_vectors() {
        assert_eq!(hex(&serialize(&None::<u8>).unwrap()), "00");
        assert_eq!(hex(&serialize(&Some(13u8)).unwrap()), "010d");
        assert_eq!(
            hex(&serialize(&Some(0x1ffu64)).unwrap()),
            "01ff01000000000000"
        );
        // Option<usize>: usize is a u16 on the wire.
        assert_eq!(hex(&serialize(&Some(13u16)).unwrap()), "010d00");
        assert_eq!(deserialize::<Option<u8>>(&[1, 13]).unwrap(), Some(13));
        assert_eq!(
            deserialize::<Option<u8>>(&[2, 13]),
            Err(StrictError::WrongOptionalEncoding(2))
        );
    }

    #[test]
    fn bifrost_init_vector() {
        // lnp-core Bifrost `init` with empty lists and no TLVs: type 0x0010 LE, empty string,
        // empty set.
        let mut out = Vec::new();
        0x0010u16.strict_encode(&mut out).unwrap();
        String::new().strict_encode(&mut out).unwrap();
        Vec::<[u8; 32]>::new().strict_encode(&mut out).unwrap();
        assert_eq!(hex(&out), "100000000000");
    }

    #[test]
    fn collections_and_strings() {
        let v = vec![1u16, 2, 3];
        assert_eq!(hex(&serialize(&v).unwrap()), "0300010002000300");
        assert_eq!(deserialize::<Vec<u16>>(&serialize(&v).unwrap()).unwrap(), v);
        assert_eq!(hex(&serialize(&"ab".to_string()).unwrap()), "02006162");
        assert_eq!(serialize(&true).unwrap(), vec![1]);
        assert_eq!(deserialize::<bool>(&[2]), Err(StrictError::InvalidBool(2)));
    }

    #[test]
    fn bad_input_is_rejected_before_allocation() {
        // Declares 65535 u64s with 0 bytes behind it: refused by the length check.
        assert_eq!(
            deserialize::<Vec<u64>>(&[0xff, 0xff]),
            Err(StrictError::UnexpectedEof { needed: 65535 * 8 })
        );
        assert_eq!(
            deserialize::<String>(&[0x05, 0x00, b'a']),
            Err(StrictError::UnexpectedEof { needed: 4 })
        );
        assert_eq!(
            deserialize::<String>(&[0x01, 0x00, 0xff]),
            Err(StrictError::InvalidUtf8)
        );
        assert_eq!(
            deserialize::<u16>(&[1, 2, 3]),
            Err(StrictError::DataNotEntirelyConsumed { left: 1 })
        );
        let mut r = Reader::new(&[0x10, 0x00]);
        assert_eq!(
            decode_string(&mut r, 8),
            Err(StrictError::ExceedMaxItems { len: 16, max: 8 })
        );
    }

    #[test]
    fn too_long_values_do_not_encode() {
        let long = vec![0u8; MAX_LEN + 1];
        assert_eq!(
            serialize(&long),
            Err(StrictError::ExceedMaxItems {
                len: MAX_LEN + 1,
                max: MAX_LEN
            })
        );
    }
}
