//! BOLT-1 message decoder (init, error, warning, ping, pong, unknown): never a panic, and every
//! decoded message re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::ln::bolt1::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.encode()).expect("re-encoded message decodes");
        assert_eq!(again, msg);
        let _ = msg.pong_for();
    }
});
