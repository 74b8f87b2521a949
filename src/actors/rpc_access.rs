//! Who may open an encrypted session on a node's TCP buses: the [`AllowList`] shared by its
//! bridges, built from `[rpc] allow` and `--rpc-allow`, and changed at run time by `rpc_allow`
//! and `rpc_revoke` (local API only). Those changes are kept in `DATA_DIR/rpc-allow`, one per
//! line (`+<key>` allowed, `-<key>` revoked), and applied over the configured keys at the next
//! start: a key revoked at run time stays revoked even if the config lists it.

use crate::bus::secure::AllowList;
use crate::wire::node_id::NodeId;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The file of run-time changes in the data dir.
pub const FILE: &str = "rpc-allow";

/// The allow-list of a node and its run-time changes.
pub struct RpcAccess {
    list: Arc<AllowList>,
    file: PathBuf,
    /// Run-time changes: key -> allowed.
    changes: Mutex<BTreeMap<NodeId, bool>>,
}

impl std::fmt::Debug for RpcAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RpcAccess({})", self.file.display())
    }
}

impl RpcAccess {
    /// The configured keys with the changes kept in `data_dir` applied.
    pub fn load(configured: &[NodeId], data_dir: &Path) -> Result<RpcAccess, String> {
        let file = data_dir.join(FILE);
        let mut changes = BTreeMap::new();
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let bad = || format!("{} line {}: not +KEY or -KEY", file.display(), n + 1);
                    let (allowed, hex) = match line.split_at(1) {
                        ("+", k) => (true, k),
                        ("-", k) => (false, k),
                        _ => return Err(bad()),
                    };
                    let key = NodeId::parse_key(hex).map_err(|_| bad())?;
                    changes.insert(key, allowed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
        let mut keys: BTreeMap<NodeId, bool> = configured.iter().map(|k| (*k, true)).collect();
        keys.extend(changes.iter().map(|(k, v)| (*k, *v)));
        let list = AllowList::new(keys.into_iter().filter(|(_, a)| *a).map(|(k, _)| k));
        Ok(RpcAccess {
            list: Arc::new(list),
            file,
            changes: Mutex::new(changes),
        })
    }

    /// The list the bridges check.
    pub fn list(&self) -> Arc<AllowList> {
        self.list.clone()
    }

    /// Allows (`true`) or revokes a key, and keeps the change (written and synced before it
    /// takes effect). Whether the list changed.
    pub fn set(&self, key: NodeId, allowed: bool) -> Result<bool, String> {
        let mut changes = crate::sync::lock(&self.changes);
        let mut next = changes.clone();
        next.insert(key, allowed);
        let text: String = next
            .iter()
            .map(|(k, a)| format!("{}{}\n", if *a { '+' } else { '-' }, k))
            .collect();
        let tmp = self.file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        };
        write().map_err(|e| format!("cannot keep the change in {}: {e}", self.file.display()))?;
        *changes = next;
        Ok(if allowed {
            self.list.allow(key)
        } else {
            self.list.revoke(&key)
        })
    }
}
