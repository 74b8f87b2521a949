//! The signer's key file, `DATA_DIR/signer.key`: the BIP39 mnemonic, English words on one line,
//! mode 0600. It is the whole backup: the same words restore the same keys anywhere (`nodectl
//! bp signer import`, or any BIP39 wallet with BIP84/BIP86 accounts).
//!
//! Written once, atomically (a temp file in the same directory, fsynced, then renamed), so a
//! crash never leaves half a key.

use super::{KeyError, Keychain};
use bitcoin::Network;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The file name in the data dir.
pub const FILE: &str = "signer.key";

/// Largest key file read (24 words of at most 8 letters and their spaces are ~216 bytes).
const MAX_FILE: u64 = 1024;

/// Loads the keychain from `path`, or creates a new mnemonic there if there is none. Returns
/// whether it was created.
pub fn load_or_create(path: &Path, network: Network) -> Result<(Keychain, bool), KeyError> {
    match std::fs::metadata(path) {
        Ok(_) => Ok((load(path, network)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let words = Keychain::generate_mnemonic();
            let keychain = Keychain::from_mnemonic(&words, network)?;
            write_new(path, &words)?;
            Ok((keychain, true))
        }
        Err(e) => Err(KeyError(format!("{}: {e}", path.display()))),
    }
}

/// Loads the keychain from `path`, refusing a file others may read.
pub fn load(path: &Path, network: Network) -> Result<Keychain, KeyError> {
    let meta = std::fs::metadata(path).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyError(format!(
            "{}: mode {:o}; the key file must be readable by its owner only (chmod 600)",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(KeyError(format!(
            "{}: {} bytes is not a mnemonic",
            path.display(),
            meta.len()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
    Keychain::from_mnemonic(&normalize(&text), network)
        .map_err(|e| KeyError(format!("{}: {e}", path.display())))
}

/// Writes `words` (a checked mnemonic) as a new key file; fails if one exists.
pub fn write_new(path: &Path, words: &str) -> Result<(), KeyError> {
    let io = |e: std::io::Error| KeyError(format!("{}: {e}", path.display()));
    if path.exists() {
        return Err(KeyError(format!(
            "{} exists; move it away first (it is the only copy of its keys unless backed up)",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let written = f
        .write_all(format!("{words}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    // The rename is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Words separated by single spaces, lower case (what an operator pastes may differ).
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_mode_0600_and_loaded_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let (k, created) = load_or_create(&path, Network::Regtest).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create(&path, Network::Regtest).unwrap();
        assert!(!created);
        assert_eq!(k.accounts(), again.accounts());
        assert!(write_new(&path, "x").is_err(), "never overwritten");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path, Network::Regtest)
            .unwrap_err()
            .0
            .contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not words at all").unwrap();
        let e = load(&path, Network::Regtest).unwrap_err().0;
        assert!(
            e.contains("not a BIP39 mnemonic") && !e.contains("words at"),
            "{e}"
        );
        assert_eq!(normalize("  Abandon\n about "), "abandon about");
    }
}
