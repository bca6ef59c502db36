//! Key operations whose answer waits for their event without holding a
//! thread: the operation's work is done and its event handed to the writer;
//! what the caller may learn (a ciphertext, a plaintext, or the refusal) is
//! released only once that event is durable, exactly as the blocking form.
//!
//! When the HSM backend's calls never wait (the software HSM), the REST
//! server awaits these on its async workers instead of parking one
//! blocking-pool thread per in-flight wrap; the blocking methods
//! ([`KeyService::wrap`](super::KeyService::wrap), ...) are `start_*` followed
//! by [`Deferred::wait`], so both paths share one implementation.

use super::KeyError;
use keyledger_ledger::writer::{PendingReceipt, Receipt};

type Release<T> = Box<dyn FnOnce(Receipt) -> T + Send>;

/// The outcome of a key operation once its event is durable.
#[must_use = "a deferred operation's outcome must be collected"]
pub struct Deferred<T> {
    /// Boxed: a pointer is all that moves between the service and the
    /// handler, whatever the size of the answer or the error.
    state: Box<State<T>>,
}

enum State<T> {
    /// Refused before any event was written (malformed request, writer
    /// closed, ...): nothing to wait for.
    Ready(Result<T, KeyError>),
    /// The operation's event is on its way; `release` builds the answer from
    /// its receipt once it is durable. If the append fails, the caller gets
    /// the storage error and never the answer (fail closed).
    Pending {
        receipt: PendingReceipt,
        release: Release<T>,
    },
    /// The refusal's event (`key.operation_failed`) is on its way; the caller
    /// gets `error` once it is durable, or even if it could not be recorded.
    Refused {
        receipt: PendingReceipt,
        error: KeyError,
    },
}

impl<T> Deferred<T> {
    pub(super) fn ready(result: Result<T, KeyError>) -> Self {
        Deferred {
            state: Box::new(State::Ready(result)),
        }
    }

    pub(super) fn failed(error: KeyError) -> Self {
        Self::ready(Err(error))
    }

    pub(super) fn pending(
        receipt: PendingReceipt,
        release: impl FnOnce(Receipt) -> T + Send + 'static,
    ) -> Self {
        Deferred {
            state: Box::new(State::Pending {
                receipt,
                release: Box::new(release),
            }),
        }
    }

    pub(super) fn refused(receipt: PendingReceipt, error: KeyError) -> Self {
        Deferred {
            state: Box::new(State::Refused { receipt, error }),
        }
    }

    /// Blocks the calling thread until the outcome is known.
    pub fn wait(self) -> Result<T, KeyError> {
        match *self.state {
            State::Ready(result) => result,
            State::Pending { receipt, release } => Ok(release(receipt.wait()?)),
            State::Refused { receipt, error } => {
                let _ = receipt.wait();
                Err(error)
            }
        }
    }

    /// Awaits the outcome [`Self::wait`] blocks for.
    pub async fn outcome(self) -> Result<T, KeyError> {
        match *self.state {
            State::Ready(result) => result,
            State::Pending { receipt, release } => Ok(release(receipt.received().await?)),
            State::Refused { receipt, error } => {
                let _ = receipt.received().await;
                Err(error)
            }
        }
    }
}
