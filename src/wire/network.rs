//! The Bitcoin network a node runs on, as one typed value parsed once (from the config or
//! `--network`) and handed to every service.

use std::fmt;

/// A Bitcoin network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Mainnet.
    Bitcoin,
    /// Testnet3.
    Testnet,
    /// Testnet4 (BIP94).
    Testnet4,
    /// Signet (the default, as the original nodes).
    Signet,
    /// Regtest.
    Regtest,
}

impl Network {
    /// Every network, in the order `--help` lists them.
    pub const ALL: [Network; 5] = [
        Network::Bitcoin,
        Network::Testnet,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
    ];

    /// The names accepted in the config and on the command line.
    pub const NAMES: [&'static str; 5] = ["bitcoin", "testnet", "testnet4", "signet", "regtest"];

    /// Lower-case name (`bitcoin`, `testnet`, `testnet4`, `signet`, `regtest`).
    pub fn name(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// Parses a name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.name() == name)
    }

    /// The `bitcoin` crate's network.
    pub fn bitcoin(self) -> bitcoin::Network {
        match self {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }

    /// The BOLT chain hash (the genesis block hash in internal byte order).
    pub fn chain_hash(self) -> [u8; 32] {
        bitcoin::blockdata::constants::ChainHash::using_genesis_block(self.bitcoin()).to_bytes()
    }

    /// The Bitcoin P2P port.
    pub fn p2p_port(self) -> u16 {
        match self {
            Network::Bitcoin => 8333,
            Network::Testnet => 18333,
            Network::Testnet4 => 48333,
            Network::Signet => 38333,
            Network::Regtest => 18444,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_chain_hashes_are_genesis_hashes_in_internal_order() {
        for n in Network::ALL {
            assert_eq!(Network::from_name(n.name()), Some(n));
        }
        assert_eq!(
            Network::NAMES.map(|s| Network::from_name(s).unwrap()),
            Network::ALL
        );
        assert_eq!(Network::from_name("mainnet"), None);
        // Regtest genesis 0f9188f1...06226e46 as shown by explorers; BOLT chain_hash reversed.
        let h = Network::Regtest.chain_hash();
        assert_eq!(h[0], 0x06);
        assert_eq!(h[31], 0x0f);
    }
}
