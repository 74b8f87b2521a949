//! Fixed-size ids shown as lower-case hex: the `hex_id!` macro declares one as a newtype over
//! its bytes, so a node id, a chunk id and a container id are three types, not three
//! `[u8; N]` that any other could stand in for.

/// Why a text is not an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError {
    /// What was expected ("a node id").
    pub what: &'static str,
    /// Its length in hex digits.
    pub hex_len: usize,
}

impl std::fmt::Display for IdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {} hex digits", self.what, self.hex_len)
    }
}

impl std::error::Error for IdError {}

/// Declares `pub struct $name(pub [u8; $len])` with hex `Display`, `FromStr` and `Debug`, the
/// strict encoding (the raw bytes), and conversions from and to bytes.
macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Its length in bytes.
            pub const LEN: usize = $len;

            /// The id of these bytes.
            pub const fn from_byte_array(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// Its bytes.
            pub const fn to_byte_array(self) -> [u8; $len] {
                self.0
            }

            /// Its bytes, borrowed.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The id of `bytes` if they are exactly its length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&bitcoin::hex::DisplayHex::as_hex(&self.0[..]), f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::wire::hex_id::IdError;
            /// Exactly twice its length in hex digits (either case).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <[u8; $len] as bitcoin::hex::FromHex>::from_hex(s)
                    .map($name)
                    .map_err(|_| $crate::wire::hex_id::IdError {
                        what: $what,
                        hex_len: 2 * $len,
                    })
            }
        }

        impl Default for $name {
            /// All zero bytes.
            fn default() -> Self {
                $name([0; $len])
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl $crate::wire::strict::Strict for $name {
            const MIN_SIZE: usize = $len;
            fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), $crate::wire::strict::StrictError> {
                out.extend_from_slice(&self.0);
                Ok(())
            }
            fn strict_decode(
                r: &mut $crate::wire::strict::Reader<'_>,
            ) -> Result<Self, $crate::wire::strict::StrictError> {
                r.array().map($name)
            }
        }
    };
}
pub(crate) use hex_id;

#[cfg(test)]
mod tests {
    hex_id!(
        /// A test id.
        Four,
        4,
        "a four-byte id"
    );

    #[test]
    fn hex_both_ways_and_strict_bytes() {
        let id: Four = "00ff10Ab".parse().unwrap();
        assert_eq!(id, Four([0, 0xff, 0x10, 0xab]));
        assert_eq!(id.to_string(), "00ff10ab");
        assert_eq!(format!("{id:?}"), "Four(00ff10ab)");
        for bad in [
            "",
            "00ff10a",
            "00ff10ab00",
            "00ff10ag",
            "+0ff10ab",
            "é0ff10",
        ] {
            let e = bad.parse::<Four>().unwrap_err();
            assert_eq!(e.to_string(), "a four-byte id is 8 hex digits", "{bad}");
        }
        let bytes = crate::wire::strict::serialize(&id).unwrap();
        assert_eq!(bytes, [0, 0xff, 0x10, 0xab]);
        assert_eq!(
            crate::wire::strict::deserialize::<Four>(&bytes).unwrap(),
            id
        );
        assert!(crate::wire::strict::deserialize::<Four>(&bytes[..3]).is_err());
        assert_eq!(Four::from_slice(&[1, 2, 3]), None);
    }
}
