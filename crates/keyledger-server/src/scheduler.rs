//! The time-driven jobs of every instance, run by one background thread:
//! pre-activation keys reaching their date, keys reaching expiry, approval
//! requests lapsing, approved requests without an outcome (the crypto
//! worker), and rotation policies coming due. Each job is idempotent and
//! appends its events like any command, so running them late or twice is
//! harmless.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::registry::Registry;
use keyledger_kms::service::KeyService;

/// One scheduled job of an instance.
type Job = fn(&KeyService) -> Result<usize, keyledger_kms::service::KeyError>;

/// Runs every job once on one instance; returns how many events they made.
pub fn tick(service: &KeyService) -> usize {
    let jobs: [(&str, Job); 5] = [
        ("activate_due", KeyService::activate_due),
        ("expire_due", KeyService::expire_due),
        ("expire_approvals", KeyService::expire_approvals),
        ("run_worker", KeyService::run_worker),
        ("rotate_due", KeyService::rotate_due),
    ];
    let mut total = 0;
    for (name, job) in jobs {
        match job(service) {
            Ok(n) => total += n,
            // A sealed instance cannot rotate; that is not news every tick.
            Err(keyledger_kms::service::KeyError::Sealed) => {}
            Err(e) => eprintln!(
                "{{\"level\":\"warn\",\"msg\":\"scheduled job failed\",\"job\":\"{name}\",\"instance\":\"{}\",\"error\":{}}}",
                service.instance(),
                serde_json::Value::String(e.to_string())
            ),
        }
    }
    total
}

/// A background thread running [`tick`] on every instance each `interval`
/// until `stop` is set.
pub fn spawn(
    registry: Arc<Registry>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("keyledger-scheduler".into())
        .spawn(move || {
            let step = Duration::from_millis(200);
            let mut waited = interval;
            while !stop.load(Ordering::Relaxed) {
                if waited >= interval {
                    for service in registry.all() {
                        tick(&service);
                    }
                    waited = Duration::ZERO;
                }
                std::thread::sleep(step);
                waited += step;
            }
        })
}
