//! Output descriptors of the signer's accounts (BIP380 checksum; BIP382 `wpkh`, BIP386 `tr`),
//! in the form Bitcoin Core's `importdescriptors` takes.

use super::AccountKind;
use bitcoin::bip32::{DerivationPath, Fingerprint, Xpub};

/// `wpkh([fp/84h/1h/0h]xpub/0/*)#checksum` (or `tr(…)`) for `chain` 0 (receive) or 1 (change).
pub fn account(
    kind: AccountKind,
    fp: Fingerprint,
    path: &DerivationPath,
    xpub: &Xpub,
    chain: u32,
) -> String {
    let origin = path.to_string().replace('\'', "h");
    let func = match kind {
        AccountKind::Wpkh => "wpkh",
        AccountKind::Tr => "tr",
    };
    with_checksum(&format!("{func}([{fp}/{origin}]{xpub}/{chain}/*)"))
}

/// `desc#checksum` (BIP380). Characters outside the descriptor set give no checksum (`desc`
/// unchanged): ours never have any.
pub fn with_checksum(desc: &str) -> String {
    match checksum(desc) {
        Some(c) => format!("{desc}#{c}"),
        None => desc.to_string(),
    }
}

const INPUT_CHARSET: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(mut c: u64, val: u64) -> u64 {
    let c0 = c >> 35;
    c = ((c & 0x7_ffff_ffff) << 5) ^ val;
    for (bit, gen) in [
        0xf5dee51989,
        0xa9fdca3312,
        0x1bab10e32d,
        0x3706b1677a,
        0x644d626ffd,
    ]
    .into_iter()
    .enumerate()
    {
        if c0 & (1 << bit) != 0 {
            c ^= gen;
        }
    }
    c
}

/// The 8-character BIP380 checksum of `desc`.
pub fn checksum(desc: &str) -> Option<String> {
    let (mut c, mut cls, mut clscount) = (1u64, 0u64, 0);
    for ch in desc.chars() {
        let pos = INPUT_CHARSET.find(ch)? as u64;
        c = polymod(c, pos & 31);
        cls = cls * 3 + (pos >> 5);
        clscount += 1;
        if clscount == 3 {
            c = polymod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if clscount > 0 {
        c = polymod(c, cls);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    Some(
        (0..8)
            .map(|j| CHECKSUM_CHARSET[((c >> (5 * (7 - j))) & 31) as usize] as char)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip380_vector_and_an_account() {
        assert_eq!(checksum("raw(deadbeef)").unwrap(), "89f8spxm");
        assert_eq!(checksum("raw(deadbeef)\u{e9}"), None);
        // The example of Bitcoin Core's doc/descriptors.md.
        assert_eq!(
            with_checksum("pkh([d34db33f/44'/0'/0']xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL/1/*)"),
            "pkh([d34db33f/44'/0'/0']xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL/1/*)#ml40v0wf"
        );
    }
}
