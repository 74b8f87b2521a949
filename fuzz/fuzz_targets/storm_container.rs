//! Decoder of Storm containers (header, u24 count, chunk ids) and of container ids given as
//! text: never panics, the chunk cap holds before allocation, and a decoded container
//! re-encodes to the bytes it came from and has an id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::limits::MAX_CONTAINER_CHUNKS;
use lnpbp_nodes::wire::storm::container::{parse_container_id, Container};
use lnpbp_nodes::wire::strict::{deserialize, serialize};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = deserialize::<Container>(data) {
        assert!(c.chunks.len() <= MAX_CONTAINER_CHUNKS);
        assert_eq!(serialize(&c).expect("re-encodes"), data);
        c.id().expect("has an id");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_container_id(text);
    }
});
