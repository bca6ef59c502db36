//! Prometheus metrics (`GET /metrics`, text exposition format): requests
//! and latency per endpoint and status, unauthenticated requests, the
//! sealed state and log size of every instance.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    unauthenticated: Counter,
    auth_attempts: Counter,
    sealed: Family<InstanceLabels, Gauge>,
    log_size: Family<InstanceLabels, Gauge>,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("keyledger");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let unauthenticated = Counter::default();
        let auth_attempts = Counter::default();
        let sealed = Family::<InstanceLabels, Gauge>::default();
        let log_size = Family::<InstanceLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by endpoint, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by endpoint", latency.clone());
        registry.register("unauthenticated_requests", "Requests refused before authentication (unknown instance or token); not logged as events", unauthenticated.clone());
        registry.register("auth_attempts", "Requests that presented a bearer token", auth_attempts.clone());
        registry.register("instance_sealed", "1 while an instance's master key is not loaded", sealed.clone());
        registry.register("log_records", "Records in an instance's log", log_size.clone());
        Metrics {
            registry,
            requests,
            latency,
            unauthenticated,
            auth_attempts,
            sealed,
            log_size,
        }
    })
}

pub fn count_unauthenticated() {
    metrics().unauthenticated.inc();
}

pub fn count_auth_attempt() {
    metrics().auth_attempts.inc();
}

/// Middleware: counts and times every request by its route pattern.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let endpoint = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let m = metrics();
    m.requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.clone(),
            method,
            status: res.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(start.elapsed().as_secs_f64());
    Ok(res)
}

/// The exposition text, with the instance gauges refreshed.
pub fn render(registry: &super::registry::Registry) -> String {
    let m = metrics();
    for service in registry.all() {
        let labels = InstanceLabels {
            instance: service.instance().to_string(),
        };
        m.sealed
            .get_or_create(&labels)
            .set(i64::from(service.sealed()));
        m.log_size
            .get_or_create(&labels)
            .set(i64::try_from(service.writer().log().head().size).unwrap_or(i64::MAX));
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out.clear();
    }
    out
}
