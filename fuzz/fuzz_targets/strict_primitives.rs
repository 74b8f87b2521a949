//! Strict-encoding decoders of collections, strings and options: never panic, never allocate
//! beyond the input, round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::strict::{deserialize, serialize};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = deserialize::<Vec<Option<String>>>(data) {
        assert_eq!(serialize(&v).unwrap(), data);
    }
    if let Ok(v) = deserialize::<Vec<u64>>(data) {
        assert_eq!(serialize(&v).unwrap(), data);
    }
    if let Ok(v) = deserialize::<Option<[u8; 33]>>(data) {
        assert_eq!(serialize(&v).unwrap(), data);
    }
});
