//! On a PostgreSQL store shared with other servers: one thread listens for
//! their appends (`LISTEN`, [`keyledger_store_postgres::notify`]) and
//! catches the instance each names up, so that this server's projections,
//! scheduler and crypto worker see another server's events within
//! milliseconds, and opens an instance another process created. After
//! (re)connecting it catches every instance up, since appends may have
//! gone unheard meanwhile. Writers also catch up under the
//! store's lock before every append, so this is about freshness, not
//! correctness.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyledger_store_postgres::PostgresStore;

use crate::registry::Registry;

/// How long one wait for notifications lasts (and so how soon `stop` is seen).
const WAIT: Duration = Duration::from_millis(500);

/// How long before opening a new instance is tried again after it failed
/// (e.g. its ledger key is not in this server's data directory yet).
const RETRY_OPEN: Duration = Duration::from_secs(30);

/// Starts the listening thread; it ends once `stop` is set.
pub fn spawn(
    store: Arc<PostgresStore>,
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("keyledger-follow".into())
        .spawn(move || run(&store, &registry, &stop))
}

fn run(store: &PostgresStore, registry: &Registry, stop: &AtomicBool) {
    let mut failed_opens: HashMap<String, Instant> = HashMap::new();
    let mut down = false;
    while !stop.load(Ordering::Relaxed) {
        let mut listener = match store.listener() {
            Ok(l) => {
                if std::mem::take(&mut down) {
                    eprintln!("keyledger: follower: listening for appends again");
                }
                l
            }
            Err(e) => {
                // Said once per outage, not at every retry.
                if !std::mem::replace(&mut down, true) {
                    eprintln!("keyledger: follower: cannot listen for appends: {e}");
                }
                std::thread::sleep(WAIT);
                continue;
            }
        };
        for service in registry.all() {
            let _ = service.catch_up();
        }
        while !stop.load(Ordering::Relaxed) {
            match listener.wait(WAIT) {
                Ok(instances) => {
                    for name in instances {
                        match registry.get(&name) {
                            Some(service) => {
                                let _ = service.catch_up();
                            }
                            None => {
                                if failed_opens
                                    .get(&name)
                                    .is_some_and(|at| at.elapsed() < RETRY_OPEN)
                                {
                                    continue;
                                }
                                match registry.open_new(&name) {
                                    Ok(_) => {
                                        failed_opens.remove(&name);
                                    }
                                    Err(e) => {
                                        eprintln!(
                                            "keyledger: follower: cannot open new instance {name}: {e}"
                                        );
                                        failed_opens.insert(name, Instant::now());
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    eprintln!("keyledger: follower: lost the database connection: {e}");
                    down = true;
                    break;
                }
            }
        }
    }
}
