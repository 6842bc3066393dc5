//! Writing what `airlock init` generated: all or nothing about existing files, and keys
//! readable by their owner only.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Mode of files holding keys, and of their directory.
const SECRET_MODE: u32 = 0o600;
const SECRET_DIR_MODE: u32 = 0o700;

/// The files to write, in order.
#[derive(Default)]
pub struct Plan {
    files: Vec<(PathBuf, String, bool)>,
}

impl Plan {
    /// A file holding a secret: mode 0600, in a directory only its owner may enter.
    pub fn secret(&mut self, path: &Path, text: String) {
        self.files.push((path.to_path_buf(), text, true));
    }

    /// A file without secrets.
    pub fn public(&mut self, path: &Path, text: String) {
        self.files.push((path.to_path_buf(), text, false));
    }

    /// Writes every file. Unless `overwrite`, refuses — before writing anything — when
    /// any of them exists, so a second run never replaces keys that are in use.
    pub fn write(&self, overwrite: bool) -> anyhow::Result<()> {
        if !overwrite {
            let existing: Vec<String> =
                self.files.iter().filter(|(p, _, _)| p.exists()).map(|(p, _, _)| p.display().to_string()).collect();
            if !existing.is_empty() {
                anyhow::bail!(
                    "refusing to overwrite {} (pass --force to replace them with new keys; --envoy-only rewrites only plugin.json and envoy.yaml)",
                    existing.join(", ")
                );
            }
        }
        for (path, text, secret) in &self.files {
            write_one(path, text, *secret).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn write_one(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            let mut dir = std::fs::DirBuilder::new();
            dir.recursive(true);
            if secret {
                dir.mode(SECRET_DIR_MODE);
            }
            dir.create(parent)?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(SECRET_MODE);
    }
    let mut file = options.open(path)?;
    if secret {
        // `mode` applies only to a file created now; one replaced with --force keeps
        // whatever it had unless set here, before the key is written into it.
        file.set_permissions(std::fs::Permissions::from_mode(SECRET_MODE))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
