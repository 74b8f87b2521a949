//! The Storm peer message decoder (wire::storm_p2p) and the Bifrost message decoder
//! (wire::bifrost) on arbitrary bytes: never a panic, nothing above the limits, and whatever
//! decodes re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::bifrost::msg::BifrostMsg;
use lnpbp_nodes::wire::storm::p2p::StormP2p;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = StormP2p::decode(data) {
        let again = m.encode().expect("a decoded Storm message re-encodes");
        assert_eq!(StormP2p::decode(&again).unwrap(), m);
    }
    if let Ok(m) = BifrostMsg::decode(data) {
        let again = m.encode().expect("a decoded Bifrost message re-encodes");
        assert_eq!(BifrostMsg::decode(&again).unwrap(), m);
    }
});
