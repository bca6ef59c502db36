//! Import tokens of the embedded store: one file per token under
//! `DATA_DIR/instances/<instance>/import-tokens/<token_id>.bin`, written and
//! shredded like key material (0600 files in 0700 directories, temp file +
//! fsync + link or rename + directory fsync; purge overwrites with zeros).
//!
//! File: `"KLT1" | u16be len | token_id | u32be len | public key DER |
//! u32be mk_generation | u32be len | wrapped private key |
//! u32be mk_generation | u32be len | wrapped nonce | u32be crc32` (the CRC
//! covers everything before it).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use super::{EmbeddedMaterialStore, INSTANCES_DIR, MAX_BLOB_LEN, shred, sync_dir};
use crate::hsm::WrappedMaterial;
use crate::material::{
    MAX_PUBLIC_KEY_LEN, MaterialError, StoredImportToken, check_instance, check_token,
    check_token_id, token_replace_allowed,
};

const TOKENS_DIR: &str = "import-tokens";
const MAGIC: [u8; 4] = *b"KLT1";

fn push_u32(out: &mut Vec<u8>, v: usize) -> Result<(), MaterialError> {
    let v = u32::try_from(v).map_err(|_| MaterialError::Backend("field too large".into()))?;
    out.extend_from_slice(&v.to_be_bytes());
    Ok(())
}

/// Encodes a token file.
pub fn encode_token(token: &StoredImportToken) -> Result<Vec<u8>, MaterialError> {
    check_token(token)?;
    if token.private_key.blob.len() > MAX_BLOB_LEN || token.nonce.blob.len() > MAX_BLOB_LEN {
        return Err(MaterialError::Backend(
            "wrapped token secret too large".into(),
        ));
    }
    let mut out = MAGIC.to_vec();
    let id = token.token_id.as_bytes();
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id);
    push_u32(&mut out, token.public_key_der.len())?;
    out.extend_from_slice(&token.public_key_der);
    for w in [&token.private_key, &token.nonce] {
        out.extend_from_slice(&w.mk_generation.to_be_bytes());
        push_u32(&mut out, w.blob.len())?;
        out.extend_from_slice(&w.blob);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// A strict reader over a token file body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn len_prefixed(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > max {
            return None;
        }
        self.take(len)
    }

    fn wrapped(&mut self) -> Option<WrappedMaterial> {
        let mk_generation = self.u32()?;
        let blob = self.len_prefixed(MAX_BLOB_LEN)?.to_vec();
        Some(WrappedMaterial {
            mk_generation,
            blob,
        })
    }
}

/// Decodes a token file strictly; `None` unless it is exactly valid.
pub fn decode_token(bytes: &[u8]) -> Option<StoredImportToken> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, crc) = bytes.split_at(body_len);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let mut r = Reader(body);
    if r.take(4)? != MAGIC {
        return None;
    }
    let id_len = r.u16()?;
    let token_id = std::str::from_utf8(r.take(id_len)?).ok()?.to_string();
    let public_key_der = r.len_prefixed(MAX_PUBLIC_KEY_LEN)?.to_vec();
    let private_key = r.wrapped()?;
    let nonce = r.wrapped()?;
    if !r.0.is_empty() {
        return None;
    }
    let token = StoredImportToken {
        token_id,
        public_key_der,
        private_key,
        nonce,
    };
    check_token(&token).ok().map(|()| token)
}

fn parse_token_name(name: &str) -> Option<&str> {
    let id = name.strip_suffix(".bin")?;
    check_token_id(id).ok().map(|()| id)
}

impl EmbeddedMaterialStore {
    /// `DATA_DIR/instances/<instance>/import-tokens`.
    pub fn tokens_dir(&self, instance: &str) -> PathBuf {
        self.data_dir
            .join(INSTANCES_DIR)
            .join(instance)
            .join(TOKENS_DIR)
    }

    /// `.../import-tokens/<token_id>.bin` (after validating both).
    pub fn token_path(&self, instance: &str, token_id: &str) -> Result<PathBuf, MaterialError> {
        check_instance(instance)?;
        check_token_id(token_id)?;
        Ok(self.tokens_dir(instance).join(format!("{token_id}.bin")))
    }

    /// Creates `instances/<instance>/import-tokens` (0700), fsyncing parents.
    fn ensure_tokens_dir(&self, instance: &str) -> io::Result<PathBuf> {
        let mut dir = self.data_dir.join(INSTANCES_DIR);
        for part in [instance, TOKENS_DIR] {
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

    fn write_token_temp(dir: &Path, token_id: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let tmp = dir.join(format!(".{token_id}.bin.tmp"));
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

    fn read_token(
        &self,
        token_id: &str,
        path: &Path,
    ) -> Result<Option<StoredImportToken>, MaterialError> {
        match fs::read(path) {
            Ok(bytes) => match decode_token(&bytes) {
                Some(t) if t.token_id == token_id => Ok(Some(t)),
                _ => Err(MaterialError::TokenCorrupt {
                    token_id: token_id.to_string(),
                }),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn put_token(
        &self,
        instance: &str,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        let path = self.token_path(instance, &token.token_id)?;
        let bytes = encode_token(token)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let exists = |store: &Self| match store.read_token(&token.token_id, &path)? {
            Some(current) if &current == token => Ok(()),
            _ => Err(MaterialError::TokenExists {
                token_id: token.token_id.clone(),
            }),
        };
        if path.exists() {
            return exists(self);
        }
        let dir = self.ensure_tokens_dir(instance)?;
        let tmp = Self::write_token_temp(&dir, &token.token_id, &bytes)?;
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

    pub(super) fn get_token(
        &self,
        instance: &str,
        token_id: &str,
    ) -> Result<Option<StoredImportToken>, MaterialError> {
        let path = self.token_path(instance, token_id)?;
        self.read_token(token_id, &path)
    }

    pub(super) fn list_tokens(&self, instance: &str) -> Result<Vec<String>, MaterialError> {
        check_instance(instance)?;
        let entries = match fs::read_dir(self.tokens_dir(instance)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().to_string();
            if let Some(id) = parse_token_name(&name) {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub(super) fn replace_token(
        &self,
        instance: &str,
        expected_generation: u32,
        token: &StoredImportToken,
    ) -> Result<(), MaterialError> {
        let path = self.token_path(instance, &token.token_id)?;
        let bytes = encode_token(token)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.read_token(&token.token_id, &path)?.ok_or_else(|| {
            MaterialError::TokenNotFound {
                token_id: token.token_id.clone(),
            }
        })?;
        if !token_replace_allowed(&current, expected_generation, token)? {
            return Ok(());
        }
        let dir = self.tokens_dir(instance);
        let tmp = Self::write_token_temp(&dir, &token.token_id, &bytes)?;
        fs::rename(&tmp, &path)?;
        sync_dir(&dir)?;
        Ok(())
    }

    pub(super) fn purge_token(
        &self,
        instance: &str,
        token_id: &str,
    ) -> Result<bool, MaterialError> {
        let path = self.token_path(instance, token_id)?;
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = self.tokens_dir(instance);
        // A temp file left by a crash mid-write goes too.
        let tmp = dir.join(format!(".{token_id}.bin.tmp"));
        if tmp.exists() {
            shred(&tmp)?;
        }
        match shred(&path) {
            Ok(()) => {
                sync_dir(&dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Shreds every token file of an instance and removes the directory
    /// (called by `purge_instance`, which holds the write lock).
    pub(super) fn purge_all_tokens(&self, instance: &str) -> Result<(), MaterialError> {
        let dir = self.tokens_dir(instance);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                shred(&entry.path())?;
            }
        }
        sync_dir(&dir)?;
        fs::remove_dir(&dir)?;
        if let Some(parent) = dir.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> StoredImportToken {
        StoredImportToken {
            token_id: "0f3c1a52-1d2e-4b7a-9c1d-3e4f5a6b7c8d".into(),
            public_key_der: vec![0x30, 0x82, 1, 2, 3],
            private_key: WrappedMaterial {
                mk_generation: 3,
                blob: vec![7; 40],
            },
            nonce: WrappedMaterial {
                mk_generation: 3,
                blob: vec![9; 28],
            },
        }
    }

    #[test]
    fn token_file_round_trips_and_rejects_damage() {
        let t = token();
        let bytes = encode_token(&t).expect("encode");
        assert_eq!(&bytes[..4], b"KLT1");
        assert_eq!(decode_token(&bytes), Some(t));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert_eq!(decode_token(&b), None, "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert_eq!(decode_token(&bytes[..n]), None, "truncated to {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_token(&longer), None);
    }

    #[test]
    fn bad_tokens_are_not_encoded() {
        let mut t = token();
        t.token_id = "../x".into();
        assert!(matches!(
            encode_token(&t),
            Err(MaterialError::InvalidTokenId)
        ));
        let mut t = token();
        t.nonce.blob.clear();
        assert!(matches!(
            encode_token(&t),
            Err(MaterialError::TokenCorrupt { .. })
        ));
        assert_eq!(parse_token_name(".x.bin.tmp"), None);
        assert_eq!(parse_token_name("abc-1.bin"), Some("abc-1"));
    }
}
