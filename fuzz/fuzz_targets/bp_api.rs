//! The BP node's API bodies (wire::api::bp), the ones of the index, watches, wallet and fees
//! included: the first byte picks one of the set's type ids, the rest is its body. Never a
//! panic; whatever decodes re-encodes to the same bytes' meaning (decode, encode, decode is the
//! same message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::api::bp::BpMsg;
use lnpbp_nodes::wire::strict::Reader;

fuzz_target!(|data: &[u8]| {
    let Some((pick, body)) = data.split_first() else {
        return;
    };
    let ids = BpMsg::TYPE_IDS;
    let type_id = ids[*pick as usize % ids.len()];
    let mut r = Reader::new(body);
    let Ok(msg) = BpMsg::decode_body(type_id, &mut r) else {
        return;
    };
    let mut out = Vec::new();
    msg.encode_body(&mut out).expect("what decodes encodes");
    let again = BpMsg::decode_body(type_id, &mut Reader::new(&out)).expect("what encodes decodes");
    assert_eq!(again, msg);
});
