//! The data dir: created with mode 0700, locked for the life of the node (a second node on the
//! same dir is refused), and home of the node identity key (`node.key`, mode 0600).

use bitcoin::secp256k1::{rand, PublicKey, Secp256k1, SecretKey};
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "nodectl.lock";
/// Name of the identity key file inside the data dir.
pub const KEY_FILE: &str = "node.key";

/// An open, locked data dir. The lock is released when this is dropped (or the process dies).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates (mode 0700) and locks `path`.
    pub fn open(path: &Path) -> Result<DataDir, String> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("cannot create data dir {}: {e}", path.display()))?;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("data dir {}: {e}", path.display()))?
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot chmod 700 {}: {e}", path.display()))?;
            tracing::warn!(dir = %path.display(), "data dir was readable by others; set to 0700");
        }
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another node is already running on data dir {} (lock {} is held)",
                    path.display(),
                    lock_path.display()
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()))
            }
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The data dir path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the node key, creating it (mode 0600) on first start.
    pub fn node_key(&self) -> Result<(SecretKey, PublicKey), String> {
        let path = self.path.join(KEY_FILE);
        let (secret, public, created) = key_file(&path)?;
        if created {
            tracing::info!(file = %path.display(), "created a new node identity key");
        }
        Ok((secret, public))
    }
}

/// Loads a key file (32 raw bytes of a secp256k1 secret key), creating it with a fresh key
/// (mode 0600, synced) if it does not exist: the key, its public key, and whether it was
/// created. The node key and `nodectl`'s client key are such files.
pub fn key_file(path: &Path) -> Result<(SecretKey, PublicKey, bool), String> {
    let secp = Secp256k1::signing_only();
    let (secret, created) = match File::open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::with_capacity(33);
            (&mut f)
                .take(33)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if bytes.len() != 32 {
                return Err(format!(
                    "{} must hold exactly 32 bytes (a secp256k1 secret key)",
                    path.display()
                ));
            }
            let secret = SecretKey::from_slice(&bytes)
                .map_err(|e| format!("{}: not a valid secret key: {e}", path.display()))?;
            (secret, false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = SecretKey::new(&mut rand::thread_rng());
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(&secret.secret_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            (secret, true)
        }
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    Ok((secret, PublicKey::from_secret_key(&secp, &secret), created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_and_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let dd = DataDir::open(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let err = DataDir::open(&dir).unwrap_err();
        assert!(err.contains("already running"), "{err}");
        let (_, pk1) = dd.node_key().unwrap();
        let (_, pk2) = dd.node_key().unwrap();
        assert_eq!(pk1, pk2);
        let key = dir.join(KEY_FILE);
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        drop(dd);
        let dd = DataDir::open(&dir).unwrap();
        std::fs::write(&key, b"short").unwrap();
        assert!(dd.node_key().unwrap_err().contains("exactly 32 bytes"));
    }
}
