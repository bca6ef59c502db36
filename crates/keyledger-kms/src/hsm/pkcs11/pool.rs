//! Loading a PKCS#11 module (once per process), finding the token, and the
//! pool of logged-in read/write sessions that operations borrow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;

use super::p11_err;
use crate::hsm::HsmError;
use crate::secret::SecretBytes;

/// Locks a mutex, recovering the data of a poisoned one (every critical
/// section here leaves its data consistent between statements).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loaded and initialised modules, by path. A module is initialised once per
/// process and never finalised: `C_Initialize`/`C_Finalize` are process-wide,
/// so two `Pkcs11Hsm` on one module (or a re-open) must share it.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The module at `path`, loaded and initialised (with OS locking: sessions
/// are used from several threads).
pub(super) fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    let mut loaded = lock(modules());
    if let Some(ctx) = loaded.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| match e {
        Error::LibraryLoading(_) => HsmError::Backend(format!(
            "cannot load PKCS#11 module {} (is it installed? scripts/softhsm-setup installs SoftHSM2)",
            path.display()
        )),
        other => p11_err(&other),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(p11_err(&e)),
    }
    loaded.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The slot holding the initialised token labelled `label`.
pub(super) fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(|e| p11_err(&e))?
    {
        let info = ctx.get_token_info(slot).map_err(|e| p11_err(&e))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(HsmError::Backend(format!(
        "no initialised PKCS#11 token labelled {label:?}"
    )))
}

/// `size` read/write sessions on `slot`, logged in as the user. PKCS#11 login
/// state is per application and token, so the first login logs every
/// session in; a token another `Pkcs11Hsm` of this process already logged
/// into answers `CKR_USER_ALREADY_LOGGED_IN`, which is fine.
pub(super) struct SessionPool {
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
}

impl SessionPool {
    pub(super) fn open(
        ctx: &Pkcs11,
        slot: Slot,
        pin: &SecretBytes,
        size: usize,
    ) -> Result<Self, HsmError> {
        let size = size.clamp(1, 64);
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(ctx.open_rw_session(slot).map_err(|e| p11_err(&e))?);
        }
        if let Some(first) = sessions.first() {
            let raw = RawAuthPin::new(Box::new(pin.expose().to_vec()));
            match first.login_with_raw(UserType::User, &raw) {
                Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(Error::Pkcs11(RvError::PinIncorrect, _)) => {
                    return Err(HsmError::Backend(
                        "PKCS#11 login failed: incorrect user PIN".into(),
                    ));
                }
                Err(e) => return Err(p11_err(&e)),
            }
        }
        Ok(SessionPool {
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
        })
    }

    /// Runs `f` with a session borrowed from the pool (waiting for one when
    /// all are busy). The session goes back to the pool even if `f` panics:
    /// session objects (cached key handles) live as long as their session.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let session = {
            let mut idle = lock(&self.idle);
            loop {
                if let Some(s) = idle.pop() {
                    break s;
                }
                idle = self
                    .returned
                    .wait(idle)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let lease = Lease {
            pool: self,
            session: Some(session),
        };
        match lease.session.as_ref() {
            Some(s) => f(s),
            None => Err(HsmError::Backend("session pool".into())),
        }
    }
}

struct Lease<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            lock(&self.pool.idle).push(s);
            self.pool.returned.notify_one();
        }
    }
}
