//! Decoder of STORE and Storm requests (type ids 0x05xx): never panics, limits hold before
//! allocation (a decoded value is never above its limit), and whatever decodes re-encodes to
//! the same message. The table name check never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::storage::{check_table, Write};
use lnpbp_nodes::wire::limits::{MAX_IDS, MAX_VALUE};
use lnpbp_nodes::wire::api::{Envelope, Msg, ServiceId};
use lnpbp_nodes::wire::api::storm::StormMsg;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a Storm type id, the rest is request id and body.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let ids = StormMsg::TYPE_IDS;
    let type_id = ids[pick as usize % ids.len()];
    let mut payload = type_id.to_le_bytes().to_vec();
    payload.extend_from_slice(rest);
    let frames = vec![
        ServiceId::Client(1).to_bytes(),
        ServiceId::named("stored").unwrap().to_bytes(),
        payload,
    ];
    let Ok(env) = Envelope::decode_frames(&frames) else {
        return;
    };
    let again = env.encode_frames().expect("a decoded message re-encodes");
    assert_eq!(Envelope::decode_frames(&again).unwrap(), env);
    if let Msg::Storm(m) = &env.msg {
        match m {
            StormMsg::Put { table, key, value } => {
                assert!(value.len() <= MAX_VALUE);
                let w = Write::Put {
                    table: table.clone(),
                    key: *key,
                    value: value.clone(),
                };
                assert_eq!(w.check().is_ok(), check_table(table).is_ok());
            }
            StormMsg::Insert { table, ids } | StormMsg::CheckUnknown { table, ids } => {
                assert!(ids.len() <= MAX_IDS);
                let _ = check_table(table);
            }
            StormMsg::StoreChunk { table, data } => {
                let _ = Write::chunk(table.clone(), data.clone());
            }
            _ => {}
        }
    }
});
