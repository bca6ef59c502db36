//! The private key file of an administrator (or key owner): an ed25519
//! seed, kept on the holder's machine, written 0600 atomically and refused
//! when group or others can read it.
//!
//! Format: `keyledger-admin-key-v1\n<64 hex>\n`.

use std::path::Path;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use keyledger_ledger::ledger_key::write_private_atomically;

const HEADER: &str = "keyledger-admin-key-v1";

/// A fresh key from the operating system's RNG.
pub fn generate() -> Result<SigningKey, String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut()).map_err(|_| "random number generator failed")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `key` to `path` (mode 0600, atomically).
pub fn write(path: &Path, key: &SigningKey) -> Result<(), String> {
    let seed = Zeroizing::new(key.to_bytes());
    let mut text = Zeroizing::new(format!("{HEADER}\n"));
    text.push_str(&hex::encode(seed.as_ref()));
    text.push('\n');
    let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    write_private_atomically(&path, text.as_bytes()).map_err(|e| e.to_string())
}

/// Reads a key written by [`write`]; refuses files group or others can read.
pub fn read(path: &Path) -> Result<SigningKey, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others (mode {mode:o}); refusing it",
            path.display()
        ));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    let malformed = || format!("{} is not a keyledger admin key file", path.display());
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(malformed());
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(lines.next().ok_or_else(malformed)?, seed.as_mut())
        .map_err(|_| malformed())?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_loose_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        let key = generate().unwrap();
        write(&path, &key).unwrap();
        assert_eq!(read(&path).unwrap().to_bytes(), key.to_bytes());
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .contains("readable by group or others")
        );
    }
}
