//! The signing devices a ledger key may live in, as this crate sees them:
//! something that makes and reopens [`LedgerSigner`]s by (instance, label).
//! The HSM backends implement [`KeyDevice`] above this crate, so the ledger
//! never depends on HSM code; [`NoDevice`] stands for "key files only".

use std::sync::Arc;

use crate::signer::LedgerSigner;

/// A device that can hold ledger keys: an HSM backend that supports signing.
///
/// Keys are named by (instance, label) inside the device; the ledger keeps
/// the device's [`kind`](KeyDevice::kind) and the label in a reference file
/// next to the key's public half, and opens the key again from them.
pub trait KeyDevice: Send + Sync {
    /// The device's own error, reported as [`super::LedgerError::Hsm`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// Short backend name recorded in key references (`pkcs11`); a
    /// reference is only opened with a device of the same kind.
    fn kind(&self) -> &str;

    /// Refuses, before anything is created, a device that cannot hold a
    /// ledger key (no signing capability).
    fn check_can_hold_keys(&self) -> Result<(), Self::Error>;

    /// Generates a new key pair labelled `label` for `instance` in `device`;
    /// `name` is the note signer name (the checkpoint origin).
    fn generate_signer(
        device: &Arc<Self>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Arc<dyn LedgerSigner>, Self::Error>;

    /// The existing key pair labelled `label` for `instance` in `device`.
    fn open_signer(
        device: &Arc<Self>,
        instance: &str,
        label: &str,
        name: &str,
    ) -> Result<Arc<dyn LedgerSigner>, Self::Error>;
}

/// No device: a ledger whose keys are always key files. It has no values,
/// so a `KeyHome<NoDevice>` is always [`super::KeyHome::File`].
#[derive(Debug)]
pub enum NoDevice {}

impl KeyDevice for NoDevice {
    type Error = std::convert::Infallible;

    fn kind(&self) -> &str {
        match *self {}
    }

    fn check_can_hold_keys(&self) -> Result<(), Self::Error> {
        match *self {}
    }

    fn generate_signer(
        device: &Arc<Self>,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Arc<dyn LedgerSigner>, Self::Error> {
        match **device {}
    }

    fn open_signer(
        device: &Arc<Self>,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Arc<dyn LedgerSigner>, Self::Error> {
        match **device {}
    }
}
