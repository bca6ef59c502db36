//! Where an HSM-held ledger key is, for the ledger commands: a PKCS#11
//! module and token label. The user PIN is read only from the environment
//! (`KEYLEDGER_PKCS11_PIN`), never from a flag, so it stays out of process
//! listings and shell history.

use std::sync::Arc;

use crate::hsm::HsmBackend;

/// Environment variable holding the token's user PIN.
#[cfg(feature = "pkcs11")]
pub const PIN_ENV: &str = "KEYLEDGER_PKCS11_PIN";

#[derive(clap::Args, Clone, Default)]
pub struct HsmArgs {
    /// PKCS#11 module of the token holding the instance's ledger key (with
    /// --pkcs11-token; user PIN in KEYLEDGER_PKCS11_PIN). `ledger generate`
    /// on a new instance creates its ledger key in that token.
    #[cfg(feature = "pkcs11")]
    #[arg(long, requires = "pkcs11_token")]
    pub pkcs11_module: Option<std::path::PathBuf>,
    /// Label of that PKCS#11 token.
    #[cfg(feature = "pkcs11")]
    #[arg(long, requires = "pkcs11_module")]
    pub pkcs11_token: Option<String>,
}

impl HsmArgs {
    /// The HSM backend the flags name, opened and logged in; `None` without flags.
    pub fn backend(&self) -> Result<Option<Arc<dyn HsmBackend>>, String> {
        #[cfg(feature = "pkcs11")]
        if let (Some(module), Some(token)) = (&self.pkcs11_module, &self.pkcs11_token) {
            return open_pkcs11(module, token, "--pkcs11-module").map(Some);
        }
        Ok(None)
    }
}

/// Opens and logs in to a PKCS#11 token with the user PIN from
/// [`PIN_ENV`]; `what` names the setting in the error when the PIN is missing.
#[cfg(feature = "pkcs11")]
pub fn open_pkcs11(
    module: &std::path::Path,
    token: &str,
    what: &str,
) -> Result<Arc<dyn HsmBackend>, String> {
    use crate::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
    let pin = std::env::var_os(PIN_ENV)
        .ok_or_else(|| format!("{what} needs the token's user PIN in {PIN_ENV}"))?;
    let pin = crate::secret::SecretBytes::new(pin.into_encoded_bytes());
    let hsm = Pkcs11Hsm::open(Pkcs11Config::new(module, token, pin))
        .map_err(|e| format!("PKCS#11 token {token:?}: {e}"))?;
    Ok(Arc::new(hsm))
}
