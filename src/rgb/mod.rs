//! RGB contracts on the RGB v0.11.1 libraries (`rgb-ops` = `rgbstd`, `rgb-schemas` =
//! `schemata`, pinned exactly in Cargo.toml): issue a NIA (non-inflatable fungible asset)
//! contract, export it (binary `RGB\0CON…` or ASCII-armored), load and validate a consignment
//! with the real RGB consensus code, import it into a stock, read its state.
//!
//! This is the layer `containerd`'s workers call (actors/rgb). [`Rgb`] is a stock in memory;
//! [`store::Contracts`] keeps one in a [`crate::storage::Storage`] (embedded or a Storm node's
//! STORE) and validates outside its lock.
//!
//! - Validation never runs our own rules: `Consignment::validate` of rgbstd decides, and its
//!   reasons are what a refusal carries. A consignment for another chain-net than ours is
//!   refused before validation.
//! - Witness transactions: a genesis-only consignment needs none. One that needs them is
//!   refused with "needs transaction data (a BP node)": [`Witnesses`] is the trait a later
//!   resolver (the BP node) will implement.
//! - Input sizes: a consignment above [`MAX_CONSIGNMENT`] bytes is refused before parsing.

pub mod store;

use armor::AsciiArmor;
use rgbstd::containers::ValidContract;
use rgbstd::containers::{ConsignmentExt, Contract, FileContent, Kit};
use rgbstd::contract::{FilterIncludeAll, IssuerWrapper};
use rgbstd::persistence::Stock;
use rgbstd::stl::{AssetSpec, ContractTerms, RicardianContract};
use rgbstd::txout::BlindSeal;
use rgbstd::validation::{
    ResolveWitness, ValidationConfig, ValidationError, WitnessResolverError, WitnessStatus,
};
use rgbstd::{Amount, ChainNet, ContractId, GenesisSeal, Precision, Txid};
use schemata::NonInflatableAsset;
use std::str::FromStr;

pub use crate::wire::limits::MAX_CONSIGNMENT;

/// The armor header of a contract consignment.
const ARMOR_BEGIN: &str = "-----BEGIN RGB CONSIGNMENT-----";

/// Why something was refused: a one-line reason for the client and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbError(pub String);

impl std::fmt::Display for RgbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RgbError {}

/// How a refusal because the store failed begins.
const STORE_FAILED: &str = "the store failed: ";

impl RgbError {
    /// Whether the store failed (rather than the input being refused).
    pub fn is_store(&self) -> bool {
        self.0.starts_with(STORE_FAILED)
    }
}

fn err(what: impl std::fmt::Display) -> RgbError {
    RgbError(what.to_string())
}

/// The chain-net of a Bitcoin network.
pub fn chain_net(network: bitcoin::Network) -> ChainNet {
    match network {
        bitcoin::Network::Bitcoin => ChainNet::BitcoinMainnet,
        bitcoin::Network::Testnet => ChainNet::BitcoinTestnet3,
        bitcoin::Network::Testnet4 => ChainNet::BitcoinTestnet4,
        bitcoin::Network::Signet => ChainNet::BitcoinSignet,
        _ => ChainNet::BitcoinRegtest,
    }
}

/// Where witness transactions come from (the BP node, later). Its answer for a txid: the
/// transaction's status, or why it cannot say.
pub trait Witnesses {
    /// The status of the witness transaction `txid`.
    fn witness(&self, txid: Txid) -> Result<WitnessStatus, String>;
}

/// No transaction data: every consignment that needs a witness is refused with the reason.
pub struct NoWitnesses;

impl Witnesses for NoWitnesses {
    fn witness(&self, txid: Txid) -> Result<WitnessStatus, String> {
        Err(format!(
            "the consignment needs transaction data (a BP node) for witness {txid}"
        ))
    }
}

/// The resolver rgbstd calls, over [`Witnesses`] for one chain-net.
struct Resolver<'a, W: Witnesses> {
    witnesses: &'a W,
    chain_net: ChainNet,
}

impl<W: Witnesses> ResolveWitness for Resolver<'_, W> {
    fn resolve_witness(&self, txid: Txid) -> Result<WitnessStatus, WitnessResolverError> {
        self.witnesses
            .witness(txid)
            .map_err(|why| WitnessResolverError::ResolverIssue(Some(txid), why))
    }

    fn check_chain_net(&self, chain_net: ChainNet) -> Result<(), WitnessResolverError> {
        if chain_net == self.chain_net {
            Ok(())
        } else {
            Err(WitnessResolverError::WrongChainNet)
        }
    }
}

/// What issues a NIA contract.
#[derive(Clone, Debug)]
pub struct NiaIssue {
    /// Ticker: 1 to 8 letters and digits, a letter first.
    pub ticker: String,
    /// Name: 1 to 40 printable ASCII characters.
    pub name: String,
    /// Decimal places, 0 to 18.
    pub precision: u8,
    /// The whole supply, assigned to `seal`.
    pub supply: u64,
    /// The seal: an outpoint `txid:vout`.
    pub seal: bitcoin::OutPoint,
    /// Blinding of the seal (random in use; fixed in tests for reproducible ids).
    pub blinding: u64,
    /// Issue time (Unix seconds).
    pub timestamp: i64,
}

/// One allocation of a fungible contract.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allocation {
    /// The seal, as rgbstd shows it.
    pub seal: String,
    /// The amount.
    pub amount: u64,
}

/// The state of a NIA contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NiaState {
    /// Contract id (`rgb:…`).
    pub contract_id: String,
    /// Ticker.
    pub ticker: String,
    /// Name.
    pub name: String,
    /// Decimal places.
    pub precision: u8,
    /// Issued supply.
    pub issued: u64,
    /// Allocations by seal, sorted.
    pub allocations: Vec<Allocation>,
}

/// A consignment that passed validation, not imported yet.
pub struct Checked {
    /// The valid contract.
    pub contract: ValidContract,
    /// Its id.
    pub id: ContractId,
    /// The validator's warnings.
    pub warnings: Vec<String>,
}

/// Loads and validates consignments for one chain-net (no stock: it runs outside any lock).
#[derive(Clone)]
pub struct Validator {
    /// The NIA type system validation trusts. Built once: building it takes ~16 ms, twelve
    /// times a whole validation (measured; docs/BENCHMARKS.md).
    types: rgbstd::TypeSystem,
    chain_net: ChainNet,
}

impl Validator {
    /// A validator for `network`.
    pub fn new(network: bitcoin::Network) -> Validator {
        Validator {
            types: NonInflatableAsset::types(),
            chain_net: chain_net(network),
        }
    }

    /// Loads a consignment (binary or armored) and validates it for our chain-net with
    /// `witnesses`; the valid contract, or why it was refused.
    pub fn check(&self, bytes: &[u8], witnesses: &impl Witnesses) -> Result<Checked, RgbError> {
        if bytes.len() > MAX_CONSIGNMENT {
            return Err(err(format!(
                "a consignment of {} bytes (at most {MAX_CONSIGNMENT})",
                bytes.len()
            )));
        }
        let contract = load(bytes)?;
        if contract.genesis.chain_net != self.chain_net {
            return Err(err(format!(
                "the consignment is for {:?}, this node runs {:?}",
                contract.genesis.chain_net, self.chain_net
            )));
        }
        let resolver = Resolver {
            witnesses,
            chain_net: self.chain_net,
        };
        let config = ValidationConfig {
            chain_net: self.chain_net,
            safe_height: None,
            trusted_typesystem: self.types.clone(),
            build_opouts_dag: false,
        };
        let valid = match contract.validate(&resolver, &config) {
            Ok(v) => v,
            Err(ValidationError::InvalidConsignment(failure)) => {
                return Err(err(format!("invalid consignment: {failure}")))
            }
            Err(ValidationError::ResolverError(e)) => return Err(err(e)),
        };
        let warnings = valid
            .validation_status()
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect();
        Ok(Checked {
            id: valid.contract_id(),
            contract: valid,
            warnings,
        })
    }
}

/// A stock of RGB contracts for one chain-net, with the NIA schema.
pub struct Rgb {
    stock: Stock,
    validator: Validator,
}

impl Rgb {
    /// An empty stock in memory for `network`, knowing the NIA schema.
    pub fn new(network: bitcoin::Network) -> Result<Rgb, RgbError> {
        Rgb::empty(Validator::new(network))
    }

    /// An empty stock knowing the NIA schema (its type system the validator's, built once).
    fn empty(validator: Validator) -> Result<Rgb, RgbError> {
        let mut kit = Kit::default();
        kit.schemata
            .push(NonInflatableAsset::schema())
            .map_err(err)?;
        kit.scripts
            .extend(NonInflatableAsset::scripts().into_values())
            .map_err(err)?;
        kit.types = validator.types.clone();
        let kit = kit
            .validate()
            .map_err(|e| err(format!("the NIA kit: {e:?}")))?;
        let mut stock = Stock::in_memory();
        stock.import_kit(kit).map_err(err)?;
        Ok(Rgb { stock, validator })
    }

    /// Issues a NIA contract into the stock; its id.
    pub fn issue_nia(&mut self, p: &NiaIssue) -> Result<ContractId, RgbError> {
        let contract = self.build_nia(p)?;
        let id = contract.contract_id();
        self.accept(contract)?;
        Ok(id)
    }

    /// Builds (does not import) a NIA contract.
    fn build_nia(&mut self, p: &NiaIssue) -> Result<ValidContract, RgbError> {
        let precision = Precision::try_from(p.precision)
            .map_err(|_| err(format!("precision {} is not 0 to 18", p.precision)))?;
        let spec = AssetSpec::with(&p.ticker, &p.name, precision, None)
            .map_err(|e| err(format!("ticker or name: {e}")))?;
        let terms = ContractTerms {
            text: RicardianContract::default(),
            media: None,
        };
        let txid = Txid::from_str(&p.seal.txid.to_string()).map_err(err)?;
        let seal = GenesisSeal::from(BlindSeal::with_blinding(txid, p.seal.vout, p.blinding));
        self.stock
            .contract_builder(
                "ssi:anonymous",
                NonInflatableAsset::schema().schema_id(),
                self.validator.chain_net,
            )
            .map_err(err)?
            .add_global_state("spec", spec)
            .map_err(err)?
            .add_global_state("terms", terms)
            .map_err(err)?
            .add_global_state("issuedSupply", Amount::from(p.supply))
            .map_err(err)?
            .add_fungible_state("assetOwner", seal, p.supply)
            .map_err(err)?
            .issue_contract_raw(p.timestamp)
            .map_err(err)
    }

    /// Imports a valid contract (a genesis needs no witness; a later resolver answers those
    /// that do).
    fn accept(&mut self, contract: ValidContract) -> Result<(), RgbError> {
        let resolver = Resolver {
            witnesses: &NoWitnesses,
            chain_net: self.validator.chain_net,
        };
        self.stock.import_contract(contract, resolver).map_err(err)
    }

    /// The contract consignment of `id`: binary (`RGB\0CON…`) or ASCII-armored.
    pub fn export(&self, id: ContractId, armored: bool) -> Result<Vec<u8>, RgbError> {
        let contract = self.stock.export_contract(id).map_err(err)?;
        if armored {
            Ok(contract.to_ascii_armored_string().into_bytes())
        } else {
            binary(&contract)
        }
    }

    /// Loads a consignment (binary or armored), validates it for our chain-net with
    /// `witnesses`, and imports it; its id, or why it was refused.
    pub fn import(
        &mut self,
        bytes: &[u8],
        witnesses: &impl Witnesses,
    ) -> Result<ContractId, RgbError> {
        let checked = self.validator.check(bytes, witnesses)?;
        self.accept(checked.contract)?;
        Ok(checked.id)
    }

    /// Whether the stock has contract `id`.
    pub fn has(&self, id: ContractId) -> bool {
        self.stock.contract_info(id).is_ok()
    }

    /// The ids of every contract in the stock.
    pub fn contracts(&self) -> Result<Vec<ContractId>, RgbError> {
        Ok(self.stock.contracts().map_err(err)?.map(|c| c.id).collect())
    }

    /// The state of NIA contract `id`.
    pub fn nia_state(&self, id: ContractId) -> Result<NiaState, RgbError> {
        let info = self.stock.contract_info(id).map_err(err)?;
        if info.schema_id != NonInflatableAsset::schema().schema_id() {
            return Err(err(format!("contract {id} is not a NIA contract")));
        }
        let c = self
            .stock
            .contract_wrapper::<NonInflatableAsset>(id)
            .map_err(err)?;
        let spec = c.spec();
        let mut allocations: Vec<Allocation> = c
            .allocations(&FilterIncludeAll)
            .map(|a| Allocation {
                seal: a.seal.to_string(),
                amount: a.state.value(),
            })
            .collect();
        allocations.sort();
        Ok(NiaState {
            contract_id: id.to_string(),
            ticker: spec.ticker().to_string(),
            name: spec.name().to_string(),
            precision: spec.precision.decimals(),
            issued: c.total_issued_supply().value(),
            allocations,
        })
    }
}

/// The binary form (`RGB\0CON…`) of a contract consignment.
fn binary(contract: &Contract) -> Result<Vec<u8>, RgbError> {
    let mut out = Vec::new();
    contract.save(&mut out).map_err(err)?;
    Ok(out)
}

/// Parses a contract id (`rgb:…`).
pub fn parse_id(s: &str) -> Result<ContractId, RgbError> {
    ContractId::from_str(s)
        .map_err(|e| err(format!("`{}` is not a contract id: {e}", s.escape_debug())))
}

/// A contract consignment from its binary or armored form.
fn load(bytes: &[u8]) -> Result<Contract, RgbError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.trim_start().starts_with(ARMOR_BEGIN) => {
            Contract::from_str(text).map_err(|e| err(format!("armored: {e}")))
        }
        _ => Contract::load(bytes).map_err(|e| err(format!("not a contract consignment: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(network: bitcoin::Network) -> (Rgb, ContractId) {
        let mut a = Rgb::new(network).unwrap();
        let id = a
            .issue_nia(&NiaIssue {
                ticker: "TEST".into(),
                name: "Test asset".into(),
                precision: 8,
                supply: 100_000,
                seal: bitcoin::OutPoint::from_str(
                    "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1",
                )
                .unwrap(),
                blinding: 100_001,
                timestamp: 1_713_261_744,
            })
            .unwrap();
        (a, id)
    }

    #[test]
    fn issued_exported_imported_in_both_forms_with_the_same_state() {
        let (a, id) = issue(bitcoin::Network::Regtest);
        let state = a.nia_state(id).unwrap();
        assert_eq!(
            (
                state.ticker.as_str(),
                state.name.as_str(),
                state.precision,
                state.issued
            ),
            ("TEST", "Test asset", 8, 100_000)
        );
        assert_eq!(state.allocations.len(), 1);
        assert_eq!(state.allocations[0].amount, 100_000);
        for armored in [false, true] {
            let bytes = a.export(id, armored).unwrap();
            assert_eq!(bytes.starts_with(b"RGB\0CON"), !armored);
            let mut b = Rgb::new(bitcoin::Network::Regtest).unwrap();
            assert_eq!(b.import(&bytes, &NoWitnesses).unwrap(), id);
            assert_eq!(b.nia_state(id).unwrap(), state);
            assert_eq!(b.contracts().unwrap(), vec![id]);
        }
    }

    #[test]
    fn tampered_truncated_and_foreign_consignments_are_refused_with_a_reason() {
        let (a, id) = issue(bitcoin::Network::Regtest);
        let bin = a.export(id, false).unwrap();
        let mut b = Rgb::new(bitcoin::Network::Regtest).unwrap();
        // Truncated.
        let e = b.import(&bin[..bin.len() / 2], &NoWitnesses).unwrap_err();
        assert!(!e.0.is_empty());
        // A changed supply (the genesis' `issuedSupply`, 100,000 as u64 LE, its first
        // occurrence; the allocation still says 100,000): the NIA script refuses it.
        let supply = 100_000u64.to_le_bytes();
        let at = bin
            .windows(8)
            .position(|w| w == supply)
            .expect("the supply in the consignment");
        let mut bad = bin.clone();
        bad[at..at + 8].copy_from_slice(&200_000u64.to_le_bytes());
        let e = b.import(&bad, &NoWitnesses).unwrap_err();
        assert!(e.0.contains("invalid"), "{e}");
        // A flipped byte anywhere after the magic: refused, or (a byte nothing commits to)
        // the very same contract; never another state under the same id, never a panic.
        let state = a.nia_state(id).unwrap();
        for at in (8..bin.len()).step_by(211) {
            let mut bad = bin.clone();
            bad[at] ^= 0x01;
            let mut fresh = Rgb::new(bitcoin::Network::Regtest).unwrap();
            if let Ok(got) = fresh.import(&bad, &NoWitnesses) {
                if got == id {
                    assert_eq!(fresh.nia_state(id).unwrap(), state, "byte {at}");
                }
            }
        }
        // A flipped character in the armored payload.
        let armored = String::from_utf8(a.export(id, true).unwrap()).unwrap();
        let body_at = armored.find("\n\n").map_or(armored.len() / 2, |i| i + 10);
        let mut chars: Vec<char> = armored.chars().collect();
        chars[body_at] = if chars[body_at] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        assert!(b.import(bad.as_bytes(), &NoWitnesses).is_err());
        // Another network.
        let (t, tid) = issue(bitcoin::Network::Testnet4);
        let e = b
            .import(&t.export(tid, false).unwrap(), &NoWitnesses)
            .unwrap_err();
        assert!(e.0.contains("this node runs"), "{e}");
        // Still serving: the original imports.
        assert_eq!(b.import(&bin, &NoWitnesses).unwrap(), id);
    }
}
