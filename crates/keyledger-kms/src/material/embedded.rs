//! The embedded key-material store: one file per key version under
//! `DATA_DIR/instances/<instance>/material/<key_id>/<version>.bin`, beside
//! the event store's `log/` and the ledger keys' `ledger-keys/`.
//!
//! File: `"KLM1" | u32be mk_generation | u32be len | blob | u32be crc32` (the
//! CRC covers everything before it), mode 0600 in 0700 directories. Writes go
//! to a temp file that is fsynced, then linked (new versions, never
//! clobbering) or renamed (replacement) into place, then the directory is
//! fsynced. Purge overwrites each file with zeros, fsyncs, unlinks it and
//! fsyncs the directory (see `docs/KEYS.md` on what overwriting can promise).
//! Import tokens live beside the keys, in `import-tokens/` ([`tokens`]).

mod tokens;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::{
    KeyMaterialStore, MaterialError, StoredImportToken, check_address, check_instance, check_key_id,
};
use crate::hsm::WrappedMaterial;

const INSTANCES_DIR: &str = "instances";
const MATERIAL_DIR: &str = "material";
const MAGIC: [u8; 4] = *b"KLM1";
/// Largest wrapped blob accepted (wrapped AES keys are well under 100 bytes).
pub const MAX_BLOB_LEN: usize = 64 * 1024;

/// Encodes a material file.
pub fn encode_file(wrapped: &WrappedMaterial) -> Result<Vec<u8>, MaterialError> {
    if wrapped.blob.len() > MAX_BLOB_LEN {
        return Err(MaterialError::Backend("wrapped material too large".into()));
    }
    let mut out = Vec::with_capacity(16 + wrapped.blob.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&wrapped.mk_generation.to_be_bytes());
    out.extend_from_slice(&(wrapped.blob.len() as u32).to_be_bytes());
    out.extend_from_slice(&wrapped.blob);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Decodes a material file strictly; `None` unless it is exactly valid.
pub fn decode_file(bytes: &[u8]) -> Option<WrappedMaterial> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, crc) = bytes.split_at(body_len);
    if body.len() < 12 || body[..4] != MAGIC || crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let len = be(8) as usize;
    if len > MAX_BLOB_LEN || body.len() != 12 + len {
        return None;
    }
    Some(WrappedMaterial {
        mk_generation: be(4),
        blob: body[12..].to_vec(),
    })
}

/// Key material in files under a data directory.
pub struct EmbeddedMaterialStore {
    data_dir: PathBuf,
    /// Serialises writes and purges within the process (one server process
    /// per instance, as the event store's lock ensures).
    write_lock: Mutex<()>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parse_version(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".bin")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if canonical { digits.parse().ok() } else { None }
}

/// Overwrites a file with zeros, fsyncs it and unlinks it.
fn shred(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    let zeros = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)
}

impl EmbeddedMaterialStore {
    /// Opens (creating if needed) the store rooted at `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, MaterialError> {
        keyledger_ledger::data_dir::create_dir_all(&data_dir.join(INSTANCES_DIR))?;
        Ok(EmbeddedMaterialStore {
            data_dir: data_dir.to_path_buf(),
            write_lock: Mutex::new(()),
        })
    }

    /// `DATA_DIR/instances/<instance>/material`.
    pub fn material_dir(&self, instance: &str) -> PathBuf {
        self.data_dir
            .join(INSTANCES_DIR)
            .join(instance)
            .join(MATERIAL_DIR)
    }

    /// `.../material/<key_id>/<version>.bin` (after validating the address).
    pub fn version_path(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
    ) -> Result<PathBuf, MaterialError> {
        check_address(instance, key_id, version)?;
        Ok(self
            .material_dir(instance)
            .join(key_id)
            .join(format!("{version}.bin")))
    }

    /// Creates `instances/<instance>/material/<key_id>` (0700), fsyncing the
    /// parent of every directory it creates.
    fn ensure_key_dir(&self, instance: &str, key_id: &str) -> io::Result<PathBuf> {
        let mut dir = self.data_dir.join(INSTANCES_DIR);
        for part in [instance, MATERIAL_DIR, key_id] {
            let child = dir.join(part);
            match DirBuilder::new().mode(0o700).create(&child) {
                Ok(()) => sync_dir(&dir)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            dir = child;
        }
        Ok(dir)
    }

    /// Writes `bytes` to a fresh temp file (0600) in `dir` and fsyncs it.
    fn write_temp(dir: &Path, version: u32, bytes: &[u8]) -> io::Result<PathBuf> {
        let tmp = dir.join(format!(".{version}.bin.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(tmp)
    }

    fn read(
        &self,
        key_id: &str,
        version: u32,
        path: &Path,
    ) -> Result<Option<WrappedMaterial>, MaterialError> {
        match fs::read(path) {
            Ok(bytes) => decode_file(&bytes)
                .map(Some)
                .ok_or_else(|| MaterialError::Corrupt {
                    key_id: key_id.to_string(),
                    version,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Shreds a key directory's files (versions and temp leftovers) and
    /// removes it; returns the number of versions shredded.
    fn purge_dir(key_dir: &Path) -> Result<u32, MaterialError> {
        let entries = match fs::read_dir(key_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut shredded = 0u32;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_file() {
                shred(&entry.path())?;
                if parse_version(&name).is_some() {
                    shredded += 1;
                }
            }
        }
        sync_dir(key_dir)?;
        fs::remove_dir(key_dir)?;
        if let Some(parent) = key_dir.parent() {
            sync_dir(parent)?;
        }
        Ok(shredded)
    }
}

impl KeyMaterialStore for EmbeddedMaterialStore {
    fn put(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError> {
        let path = self.version_path(instance, key_id, version)?;
        let bytes = encode_file(wrapped)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let exists = |store: &Self| -> Result<(), MaterialError> {
            match store.read(key_id, version, &path)? {
                Some(current) if &current == wrapped => Ok(()),
                _ => Err(MaterialError::AlreadyExists {
                    key_id: key_id.to_string(),
                    version,
                }),
            }
        };
        if path.exists() {
            return exists(self);
        }
        let dir = self.ensure_key_dir(instance, key_id)?;
        let tmp = Self::write_temp(&dir, version, &bytes)?;
        // A hard link never replaces an existing file.
        let linked = fs::hard_link(&tmp, &path);
        fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return exists(self),
            Err(e) => return Err(e.into()),
        }
        sync_dir(&dir)?;
        Ok(())
    }

    fn get(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Option<WrappedMaterial>, MaterialError> {
        let path = self.version_path(instance, key_id, version)?;
        self.read(key_id, version, &path)
    }

    fn versions(&self, instance: &str, key_id: &str) -> Result<Vec<u32>, MaterialError> {
        check_instance(instance)?;
        check_key_id(key_id)?;
        let dir = self.material_dir(instance).join(key_id);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(v) = parse_version(&entry.file_name().to_string_lossy()) {
                versions.push(v);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    fn keys(&self, instance: &str) -> Result<Vec<String>, MaterialError> {
        check_instance(instance)?;
        let entries = match fs::read_dir(self.material_dir(instance)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().to_string();
            if check_key_id(&name).is_ok() && !self.versions(instance, &name)?.is_empty() {
                keys.push(name);
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn replace(
        &self,
        instance: &str,
        key_id: &str,
        version: u32,
        expected_generation: u32,
        wrapped: &WrappedMaterial,
    ) -> Result<(), MaterialError> {
        let path = self.version_path(instance, key_id, version)?;
        let bytes = encode_file(wrapped)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current =
            self.read(key_id, version, &path)?
                .ok_or_else(|| MaterialError::NotFound {
                    key_id: key_id.to_string(),
                    version,
                })?;
        if &current == wrapped {
            return Ok(());
        }
        if current.mk_generation != expected_generation {
            return Err(MaterialError::GenerationMismatch {
                key_id: key_id.to_string(),
                version,
                expected: expected_generation,
                found: current.mk_generation,
            });
        }
        let dir = self.material_dir(instance).join(key_id);
        let tmp = Self::write_temp(&dir, version, &bytes)?;
        fs::rename(&tmp, &path)?;
        sync_dir(&dir)?;
        Ok(())
    }

    fn purge(&self, instance: &str, key_id: &str) -> Result<u32, MaterialError> {
        check_instance(instance)?;
        check_key_id(key_id)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Self::purge_dir(&self.material_dir(instance).join(key_id))
    }

    fn purge_instance(&self, instance: &str) -> Result<u64, MaterialError> {
        check_instance(instance)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.purge_all_tokens(instance)?;
        let material = self.material_dir(instance);
        let entries = match fs::read_dir(&material) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut total = 0u64;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                total += u64::from(Self::purge_dir(&entry.path())?);
            } else {
                shred(&entry.path())?;
            }
        }
        sync_dir(&material)?;
        fs::remove_dir(&material)?;
        if let Some(parent) = material.parent() {
            sync_dir(parent)?;
        }
        Ok(total)
    }

    fn put_import_token(
        &self,
        instance: &str,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        self.put_token(instance, token)
    }

    fn get_import_token(
        &self,
        instance: &str,
        token_id: &str,
    ) -> Result<Option<StoredImportToken>, MaterialError> {
        self.get_token(instance, token_id)
    }

    fn import_tokens(&self, instance: &str) -> Result<Vec<String>, MaterialError> {
        self.list_tokens(instance)
    }

    fn replace_import_token(
        &self,
        instance: &str,
        expected_generation: u32,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        self.replace_token(instance, expected_generation, token)
    }

    fn purge_import_token(&self, instance: &str, token_id: &str) -> Result<bool, MaterialError> {
        self.purge_token(instance, token_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_format_round_trips_and_rejects_damage() {
        let w = WrappedMaterial {
            mk_generation: 7,
            blob: vec![1, 2, 3, 4, 5],
        };
        let bytes = encode_file(&w).expect("encode");
        assert_eq!(&bytes[..4], b"KLM1");
        assert_eq!(decode_file(&bytes), Some(w));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert_eq!(decode_file(&b), None, "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert_eq!(decode_file(&bytes[..n]), None, "truncated to {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_file(&longer), None);
    }

    #[test]
    fn version_names_are_canonical() {
        assert_eq!(parse_version("1.bin"), Some(1));
        assert_eq!(parse_version("42.bin"), Some(42));
        for bad in [
            "0.bin",
            "01.bin",
            ".1.bin.tmp",
            "1.bin.tmp",
            "x.bin",
            ".bin",
            "99999999999.bin",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
