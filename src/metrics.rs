//! Metrics, through the `metrics` crate with a Prometheus recorder per
//! service (not the process-global one): the demo runs a store and a
//! warehouse in one process, and each `/metrics` must show only its own.
//! Handles are registered once and kept, so recording is a cheap atomic op.

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::domain::Role;

/// Buckets (seconds) for request and delivery latencies.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Snapshots the peer acknowledged (applied, or already held).
    pub delivered: Counter,
    /// Snapshots whose delivery attempt failed.
    pub delivery_failures: Counter,
    /// Peer snapshots applied here.
    pub applied: Counter,
    /// From the commit of a change to the peer's acknowledgement, seconds.
    pub delivery_latency: Histogram,
    pub outbox_pending: Gauge,
    pub outbox_dead: Gauge,
    /// 0 closed, 1 half-open, 2 open.
    pub breaker_state: Gauge,
    /// Keeps this service's repeated warnings (refused sync requests,
    /// accept failures) from flooding the log.
    pub warnings: crate::telemetry::Throttle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(role: Role) -> Self {
        let builder = PrometheusBuilder::new().add_global_label("role", role.as_str());
        // Setting buckets only fails for an empty list.
        let builder = builder
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, help: &'static str| {
            recorder.describe_counter(name.into(), None, help.into());
        };
        describe(
            "fulfillment_sync_delivered_total",
            "Snapshots the peer acknowledged (applied or already held).",
        );
        describe(
            "fulfillment_sync_failures_total",
            "Snapshots whose delivery attempt failed.",
        );
        describe(
            "fulfillment_sync_applied_total",
            "Peer snapshots applied here.",
        );
        describe(
            "fulfillment_sync_refused_total",
            "Sync requests refused before reading their body, by reason (missing_header, bad_timestamp, clock_skew, signature).",
        );
        describe(
            "fulfillment_accept_failures_total",
            "Connections the listener failed to accept, by reason (no_file_descriptors, other).",
        );
        recorder.describe_histogram(
            "fulfillment_sync_delivery_seconds".into(),
            Some(metrics::Unit::Seconds),
            "From a change's commit to the peer's acknowledgement.".into(),
        );
        recorder.describe_histogram(
            "fulfillment_http_request_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "HTTP request duration by route and status.".into(),
        );
        recorder.describe_gauge(
            "fulfillment_outbox_pending".into(),
            None,
            "Outbox rows waiting for delivery.".into(),
        );
        recorder.describe_gauge(
            "fulfillment_outbox_dead".into(),
            None,
            "Dead letters waiting for a replay.".into(),
        );
        recorder.describe_gauge(
            "fulfillment_sync_breaker_state".into(),
            None,
            "Circuit breaker towards the peer: 0 closed, 1 half-open, 2 open.".into(),
        );
        let key = |name: &'static str| Key::from_name(name);
        Self {
            delivered: recorder.register_counter(&key("fulfillment_sync_delivered_total"), &META),
            delivery_failures: recorder
                .register_counter(&key("fulfillment_sync_failures_total"), &META),
            applied: recorder.register_counter(&key("fulfillment_sync_applied_total"), &META),
            delivery_latency: recorder
                .register_histogram(&key("fulfillment_sync_delivery_seconds"), &META),
            outbox_pending: recorder.register_gauge(&key("fulfillment_outbox_pending"), &META),
            outbox_dead: recorder.register_gauge(&key("fulfillment_outbox_dead"), &META),
            breaker_state: recorder.register_gauge(&key("fulfillment_sync_breaker_state"), &META),
            warnings: crate::telemetry::Throttle::default(),
            recorder,
            handle,
        }
    }

    /// Records one HTTP request. `route` is the matched route pattern (never
    /// the raw path, which would make one series per order id).
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = Key::from_parts(
            "fulfillment_http_request_duration_seconds",
            vec![
                Label::new("method", method.to_owned()),
                Label::new("route", route.to_owned()),
                Label::new("status", status.to_string()),
            ],
        );
        self.recorder
            .register_histogram(&key, &META)
            .record(seconds);
    }

    /// The counter of refused sync requests for `reason`.
    pub fn sync_refused(&self, reason: &'static str) -> Counter {
        self.labelled_counter("fulfillment_sync_refused_total", reason)
    }

    /// The counter of failed accepts for `reason`.
    pub fn accept_failures(&self, reason: &'static str) -> Counter {
        self.labelled_counter("fulfillment_accept_failures_total", reason)
    }

    fn labelled_counter(&self, name: &'static str, reason: &'static str) -> Counter {
        let key = Key::from_parts(name, vec![Label::new("reason", reason)]);
        self.recorder.register_counter(&key, &META)
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
