//! `signd`: the BP node's signer service (`ff` "signd" on the SIGN and API buses). It answers
//! `signer_info`, `get_address` and `sign_psbt` (docs/API.md, "BP requests") from the
//! [`Keychain`] loaded at start; the key never leaves this process.
//!
//! Signing runs on a thread of its own (a large PSBT takes milliseconds of ECDSA per input), at
//! most [`MAX_SIGN_JOBS`] at once. The requests being signed are kept here: if signd fails (a
//! panic, `debug crash signd`) they are answered with `0x5000` as it stops, and the signature
//! the thread finishes later is dropped. The keychain outlives restarts (same key).

use super::state::BpState;
use crate::actors::limits::MAX_SIGN_JOBS;
use crate::actors::service::{not_taken, Service, ServiceActor};
use crate::bus::{Bus, Deliver};
use crate::signer::{sign_psbt, AccountKind, Keychain, Policy, SignError};
use crate::sync::lock;
use crate::wire::api::bp::{AccountInfo, AddressInfo, BpMsg, PsbtSigned};
use crate::wire::api::{code, Envelope, Msg, ServiceId, ServiceName};
use actix::prelude::*;
use bitcoin::consensus::encode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// signd's service id on its buses.
pub fn id() -> ServiceId {
    const SIGND: ServiceId = ServiceId::Other(ServiceName::fixed("signd"));
    SIGND
}

/// What outlives a restart of signd: the keychain, its policy, the store of address indexes.
pub struct Signer {
    /// The master key and accounts.
    pub keychain: Keychain,
    /// What it signs.
    pub policy: Policy,
    /// The BP node's store (next unused address indexes).
    pub state: Arc<BpState>,
}

/// Sign requests in flight: job number -> the request to answer.
type Pending = Arc<Mutex<HashMap<u64, (Bus, Envelope)>>>;

/// The service.
pub struct Signd {
    signer: Arc<Signer>,
    buses: Vec<Bus>,
    pending: Pending,
    next_job: u64,
}

impl Signd {
    /// signd over `signer`, registered on `buses` (SIGN and API).
    pub fn new(signer: Arc<Signer>, buses: Vec<Bus>) -> Signd {
        Signd {
            signer,
            buses,
            pending: Pending::default(),
            next_job: 0,
        }
    }

    fn info(&self) -> Msg {
        let k = &self.signer.keychain;
        let accounts = k
            .accounts()
            .into_iter()
            .map(|a| AccountInfo {
                kind: a.kind as u8,
                path: format!("m/{}", a.path),
                xpub: a.xpub.to_string(),
                receive: a.receive,
                change: a.change,
            })
            .collect();
        BpMsg::SignerAccounts {
            fingerprint: k.fingerprint().to_bytes(),
            accounts,
        }
        .into()
    }

    fn address(&self, taproot: bool, index: Option<u32>) -> Msg {
        let kind = if taproot {
            AccountKind::Tr
        } else {
            AccountKind::Wpkh
        };
        let index = match index {
            Some(i) => i,
            None => match self.signer.state.take_address_index(kind as u8) {
                Ok(i) => i,
                Err(e) => return Msg::failure(code::SERVICE_FAILED, e),
            },
        };
        match self.signer.keychain.address(kind, index) {
            Ok(a) => BpMsg::AddressInfo(AddressInfo {
                address: a.address.to_string(),
                kind: kind as u8,
                index,
                path: format!("m/{}", a.path),
                script: a.script().to_bytes(),
                pubkey: a.pubkey.0,
            })
            .into(),
            Err(e) => Msg::failure(code::INVALID_ARGUMENT, e.0),
        }
    }

    /// Starts signing on a thread; `Some` if it could not start.
    fn sign(&mut self, bus: &Bus, env: &Envelope, psbt: Vec<u8>, finalize: bool) -> Option<Msg> {
        if lock(&self.pending).len() >= MAX_SIGN_JOBS {
            return Some(Msg::failure(
                code::BUSY,
                format!("{MAX_SIGN_JOBS} PSBTs are being signed; retry"),
            ));
        }
        self.next_job += 1;
        let job = self.next_job;
        lock(&self.pending).insert(job, (bus.clone(), env.clone()));
        let (signer, pending) = (self.signer.clone(), self.pending.clone());
        let spawned = std::thread::Builder::new()
            .name("signd-sign".into())
            .spawn(move || {
                let reply = crate::guard::guard(|| Ok(signed(&signer, &psbt, finalize)))
                    .unwrap_or_else(|why| Msg::failure(code::SERVICE_FAILED, why));
                // Gone if signd failed meanwhile: that request is answered already.
                if let Some((bus, env)) = lock(&pending).remove(&job) {
                    bus.send(env.reply(reply));
                }
            });
        match spawned {
            Ok(_) => None,
            Err(e) => {
                lock(&self.pending).remove(&job);
                Some(Msg::failure(
                    code::BUSY,
                    format!("cannot start a thread: {e}"),
                ))
            }
        }
    }
}

/// Signs and builds the reply (on the job thread).
fn signed(signer: &Signer, psbt: &[u8], finalize: bool) -> Msg {
    match sign_psbt(&signer.keychain, &signer.policy, psbt, finalize) {
        Ok(out) => {
            let txid = out.psbt.unsigned_tx.compute_txid();
            tracing::info!(%txid, signed = ?out.signed, fee = out.fee, final_tx = out.tx.is_some(),
                "signed a PSBT");
            let (finalized, data) = match &out.tx {
                Some(tx) => (true, encode::serialize(tx)),
                None => (false, out.psbt.serialize()),
            };
            BpMsg::PsbtSigned(PsbtSigned {
                signed: out.signed,
                fee: out.fee,
                finalized,
                data,
                not_final: out.not_final,
            })
            .into()
        }
        Err(e) => {
            let c = match e {
                SignError::Malformed(_) => code::MALFORMED,
                SignError::Invalid(_) => code::INVALID_ARGUMENT,
                SignError::Refused(_) => code::REFUSED,
            };
            tracing::warn!("PSBT not signed: {e}");
            Msg::failure(c, e.to_string())
        }
    }
}

impl Service for Signd {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let me = ctx.address().recipient::<Deliver>();
        for bus in &self.buses {
            bus.register(id(), me.clone());
        }
        Ok(())
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let Deliver { mut env, bus } = d;
        let reply = match &mut env.msg {
            Msg::Bp(BpMsg::SignerInfo) => self.info(),
            Msg::Bp(BpMsg::GetAddress { taproot, index }) => self.address(*taproot, *index),
            Msg::Bp(BpMsg::SignPsbt { psbt, finalize }) => {
                // The PSBT moves to the job (up to 4 MB); `env` keeps the ids for the reply.
                let (psbt, finalize) = (std::mem::take(psbt), *finalize);
                match self.sign(&bus, &env, psbt, finalize) {
                    Some(refused) => refused,
                    None => return Ok(()), // the job answers
                }
            }
            _ => {
                not_taken("signd", &Deliver { env, bus });
                return Ok(());
            }
        };
        bus.send(env.reply(reply));
        Ok(())
    }

    fn stop(&mut self) {
        // Requests being signed get their failure now; the threads' late answers are dropped.
        for (_, (bus, env)) in lock(&self.pending).drain() {
            bus.send(env.reply(Msg::failure(
                code::SERVICE_FAILED,
                "signd failed while signing this PSBT; it was restarted, sign again",
            )));
        }
    }
}
