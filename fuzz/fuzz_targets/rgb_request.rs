//! Decoder of the RGB node's messages (type ids 0x04xx): never panics, limits hold before
//! allocation (a decoded consignment, id, text or list is never above its limit), and
//! whatever decodes re-encodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::limits::{MAX_CONSIGNMENT, MAX_LIST};
use lnpbp_nodes::wire::api::{Envelope, Msg, ServiceId};
use lnpbp_nodes::wire::api::rgb::{RgbMsg, MAX_ID_TEXT};

fuzz_target!(|data: &[u8]| {
    // The first byte picks an RGB type id, the rest is request id and body.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let ids = RgbMsg::TYPE_IDS;
    let type_id = ids[pick as usize % ids.len()];
    let mut payload = type_id.to_le_bytes().to_vec();
    payload.extend_from_slice(rest);
    let frames = vec![
        ServiceId::Client(1).to_bytes(),
        ServiceId::Rgbd.to_bytes(),
        payload,
    ];
    let Ok(env) = Envelope::decode_frames(&frames) else {
        return;
    };
    let again = env.encode_frames().expect("a decoded message re-encodes");
    assert_eq!(Envelope::decode_frames(&again).unwrap(), env);
    let Msg::Rgb(m) = &env.msg else {
        panic!("an RGB type id decoded as another message");
    };
    match m {
        RgbMsg::Import(b) | RgbMsg::Exported(b) => assert!(b.len() <= MAX_CONSIGNMENT),
        RgbMsg::Issued(id) | RgbMsg::State(id) => assert!(id.len() <= MAX_ID_TEXT),
        RgbMsg::Export { contract_id, .. } | RgbMsg::SendContract { contract_id, .. } => {
            assert!(contract_id.len() <= MAX_ID_TEXT)
        }
        RgbMsg::ContractList(ids) => assert!(ids.len() <= MAX_LIST),
        RgbMsg::ContractState(s) => assert!(s.allocations.len() <= MAX_LIST),
        RgbMsg::ContractReceived(r) => assert!(r.reasons.len() <= MAX_LIST),
        RgbMsg::Imported(v) => assert!(v.warnings.len() <= MAX_LIST),
        RgbMsg::Issue(i) => assert!(i.seal.len() <= MAX_ID_TEXT && i.ticker.len() <= MAX_ID_TEXT),
        RgbMsg::Contracts | RgbMsg::ContractSubscribe => {}
    }
});
