//! The store conformance suite: the behaviour of [`EventStore`] and
//! [`InstanceLog`] that callers (the writer, the ledger, readers, export)
//! rely on, as cases every backend must pass (compiled with the
//! `conformance` feature; the embedded store runs it from
//! `tests/store_embedded.rs`, as akd's storage tests are run per backend).
//!
//! A backend provides a **fresh** function: each call makes new, empty
//! storage and returns an **open** function, each call of which returns a
//! new handle on that same storage (so "reopen" means: drop every handle,
//! call `open` again). Either
//!
//! - `keyledger_ledger::store_conformance_tests!(fresh);` in a test file
//!   generates one `#[test]` per case, named after it; or
//! - [`run_all`]`(fresh)` runs every case and panics naming each one that
//!   failed.
//!
//! Backend-specific behaviour (torn writes, file damage, locks across
//! processes) is tested by the backend itself, not here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cases;
mod helpers;

pub use cases::*;
pub use helpers::*;

use crate::store::EventStore;

/// Returns a new handle on the backend's storage under test.
pub type Open<'a> = &'a dyn Fn() -> Box<dyn EventStore>;

/// One case of the suite.
pub type Case = fn(Open<'_>);

/// Every case, by name, in the order [`run_all`] runs them.
pub const CASES: &[(&str, Case)] = &[
    (
        "check_instances_create_open_list",
        check_instances_create_open_list,
    ),
    ("check_append_and_read_back", check_append_and_read_back),
    (
        "check_bad_batches_write_nothing",
        check_bad_batches_write_nothing,
    ),
    (
        "check_broken_chain_is_refused",
        check_broken_chain_is_refused,
    ),
    ("check_out_of_range", check_out_of_range),
    ("check_tree_and_proofs", check_tree_and_proofs),
    (
        "check_reopen_preserves_everything",
        check_reopen_preserves_everything,
    ),
    ("check_checkpoints", check_checkpoints),
    (
        "check_concurrent_readers_see_whole_batches",
        check_concurrent_readers_see_whole_batches,
    ),
    (
        "check_racing_appends_one_wins",
        check_racing_appends_one_wins,
    ),
    ("check_instances_are_isolated", check_instances_are_isolated),
    ("check_writer_round_trip", check_writer_round_trip),
];

/// Runs `case` on fresh storage from `fresh`.
pub fn run_case<F, O, S>(case: Case, fresh: &F)
where
    F: Fn() -> O,
    O: Fn() -> S,
    S: EventStore + 'static,
{
    let open = fresh();
    let boxed = || -> Box<dyn EventStore> { Box::new(open()) };
    case(&boxed);
}

/// Runs every case, each on fresh storage from `fresh`, and panics naming
/// every case that failed (a failing case's own panic message is printed
/// as it happens).
pub fn run_all<F, O, S>(fresh: F)
where
    F: Fn() -> O,
    O: Fn() -> S,
    S: EventStore + 'static,
{
    let failed: Vec<&str> = CASES
        .iter()
        .filter(|(_, case)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(*case, &fresh)))
                .is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "store conformance cases failed: {}",
        failed.join(", ")
    );
}

/// Generates one `#[test]` per conformance case, named after the case,
/// each on fresh storage from `$fresh` (see the [module docs](crate::conformance)),
/// plus a test that the list covers [`CASES`](crate::conformance::CASES).
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:expr) => {
        $crate::store_conformance_tests!(@cases $fresh;
            check_instances_create_open_list,
            check_append_and_read_back,
            check_bad_batches_write_nothing,
            check_broken_chain_is_refused,
            check_out_of_range,
            check_tree_and_proofs,
            check_reopen_preserves_everything,
            check_checkpoints,
            check_concurrent_readers_see_whole_batches,
            check_racing_appends_one_wins,
            check_instances_are_isolated,
            check_writer_round_trip,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case($crate::conformance::$case, &$fresh);
            }
        )*

        #[test]
        fn conformance_runs_every_case() {
            let names: &[&str] = &[$(stringify!($case)),*];
            let all: Vec<&str> = $crate::conformance::CASES.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, all.as_slice());
        }
    };
}
