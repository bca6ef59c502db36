//! Prometheus metrics (`GET /metrics`, text exposition format): requests
//! and latency per endpoint and status, unauthenticated requests, the
//! sealed state and log size of every instance, the writer's batch sizes
//! and append latency per instance, the HSM's latency per operation, and
//! every SIEM sink's lag, deliveries and failures.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use keyledger_ledger::histogram::HistogramSnapshot;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    instance: String,
    sink: String,
}

/// One sink's figures at a scrape.
#[derive(Debug)]
struct SinkFigures {
    labels: SinkLabels,
    lag: u64,
    delivered: u64,
    failures: u64,
    up: bool,
    forwarding: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
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
pub fn render(
    registry: &super::registry::Registry,
    sinks: &super::sink_board::SinkBoard,
) -> String {
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
            .set(i64::try_from(service.audit_log().size()).unwrap_or(i64::MAX));
    }
    sinks.refresh(|i| registry.get(i).map(|s| s.audit_log().size()));
    let mut scraped = Registry::with_prefix("keyledger");
    scraped.register_collector(Box::new(Snapshots::read(registry, sinks)));
    let mut out = String::new();
    let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &m.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &scraped))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    if encoded.is_err() {
        out.clear();
    }
    out
}

/// Histograms the library keeps with atomics (the writer's, the HSM's),
/// read once per scrape.
#[derive(Debug)]
struct Snapshots {
    batch_records: Vec<(InstanceLabels, HistogramSnapshot)>,
    append_seconds: Vec<(InstanceLabels, HistogramSnapshot)>,
    hsm_seconds: Vec<(OperationLabels, HistogramSnapshot)>,
    sinks: Vec<SinkFigures>,
}

impl Snapshots {
    fn read(registry: &super::registry::Registry, board: &super::sink_board::SinkBoard) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let mut batch_records = Vec::new();
        let mut append_seconds = Vec::new();
        for service in registry.all() {
            let labels = InstanceLabels {
                instance: service.instance().to_string(),
            };
            let stats = service.writer_stats();
            batch_records.push((labels.clone(), stats.batch_records.snapshot()));
            append_seconds.push((labels, stats.append_seconds.snapshot()));
        }
        let hsm_seconds = registry
            .hsm_latency()
            .map(|l| l.snapshot())
            .unwrap_or_default()
            .into_iter()
            .map(|(operation, s)| {
                let labels = OperationLabels {
                    operation: operation.to_string(),
                };
                (labels, s)
            })
            .collect();
        let sinks = board
            .all()
            .into_iter()
            .map(|s| SinkFigures {
                labels: SinkLabels {
                    instance: s.instance,
                    sink: s.sink,
                },
                lag: s.status.lag(),
                delivered: s.status.delivered.load(Relaxed),
                failures: s.status.failures.load(Relaxed),
                up: !s.status.failing.load(Relaxed),
                forwarding: s.status.forwarding.load(Relaxed),
            })
            .collect();
        Snapshots {
            batch_records,
            append_seconds,
            hsm_seconds,
            sinks,
        }
    }
}

fn encode_histograms<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    family: &[(L, HistogramSnapshot)],
) -> Result<(), std::fmt::Error> {
    if family.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, s) in family {
        metric
            .encode_family(labels)?
            .encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)?;
    }
    Ok(())
}

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_histograms(
            &mut encoder,
            "append_batch_records",
            "Records per durable append batch (one write and one fsync each), per instance.",
            &self.batch_records,
        )?;
        encode_histograms(
            &mut encoder,
            "append_duration_seconds",
            "Time to make one batch durable (write and fsync), per instance.",
            &self.append_seconds,
        )?;
        encode_histograms(
            &mut encoder,
            "hsm_operation_duration_seconds",
            "HSM call latency by operation (failed calls included).",
            &self.hsm_seconds,
        )?;
        self.encode_sinks(&mut encoder)
    }
}

/// A per-sink metric: name, help, and its value of a sink's figures.
type SinkMetric<T> = (&'static str, &'static str, fn(&SinkFigures) -> T);

impl Snapshots {
    fn encode_sinks(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let gauges: [SinkMetric<i64>; 3] = [
            (
                "sink_lag_records",
                "Records of an instance's log a SIEM sink has not had acknowledged yet.",
                |s| i64::try_from(s.lag).unwrap_or(i64::MAX),
            ),
            (
                "sink_up",
                "1 while a SIEM sink's last delivery succeeded, 0 while it fails.",
                |s| i64::from(s.up),
            ),
            (
                "sink_forwarding",
                "1 while this server forwards a SIEM sink, 0 while another server on the same database does.",
                |s| i64::from(s.forwarding),
            ),
        ];
        for (name, help, value) in gauges {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in &self.sinks {
                metric.encode_family(&s.labels)?.encode_gauge(&value(s))?;
            }
        }
        let counters: [SinkMetric<u64>; 2] = [
            (
                "sink_delivered_records",
                "Records a SIEM sink's receiver acknowledged since the server started.",
                |s| s.delivered,
            ),
            (
                "sink_failures",
                "Failed delivery attempts of a SIEM sink since the server started.",
                |s| s.failures,
            ),
        ];
        for (name, help, value) in counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &self.sinks {
                metric
                    .encode_family(&s.labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value(s), None)?;
            }
        }
        Ok(())
    }
}
