//! Each BOLT-8 handshake act, in both roles, fed arbitrary bytes: never a panic; anything that
//! is not the exact valid act is an error.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Responder};

fuzz_target!(|data: &[u8]| {
    let k = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let secp = Secp256k1::signing_only();
    let (ls_i, ls_r) = (k(0x11), k(0x21));
    let rs = PublicKey::from_secret_key(&secp, &ls_r);
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = Responder::new(ls_r, k(0x22), Framing::Brontide).act_one(input);
        }
        1 => {
            let (_, i) = Initiator::new(ls_i, rs, k(0x12)).act_one(Framing::Brontide);
            let _ = i.act_two(input);
        }
        _ => {
            let (a1, _) = Initiator::new(ls_i, rs, k(0x12)).act_one(Framing::Brontide);
            let (_, r) = Responder::new(ls_r, k(0x22), Framing::Brontide)
                .act_one(&a1)
                .unwrap();
            let _ = r.act_three(input);
        }
    }
});
