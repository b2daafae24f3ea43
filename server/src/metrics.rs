//! Prometheus metrics, served at `GET /metrics`: requests answered by action and outcome
//! (`hoist_server_requests_total{action, status}`: signatures given, denials by their status),
//! and how long each action took (`hoist_server_request_seconds{action}`, a histogram). Each
//! app has its own recorder (no process-wide one), so several apps in one process — replicas
//! in a test — count apart.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The latency buckets, in seconds: signing takes milliseconds; a Complete can take seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// An app's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let builder = PrometheusBuilder::new();
        // The buckets are constants that the builder accepts; without them, summaries.
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle }
    }
}

impl Metrics {
    /// Counts a request of `action` answered with `status`, and how long it took.
    pub fn answered(&self, action: &'static str, status: u16, took: Duration) {
        let labels = vec![
            Label::new("action", action),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts("hoist_server_requests_total", labels),
                &METADATA,
            )
            .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "hoist_server_request_seconds",
                    vec![Label::new("action", action)],
                ),
                &METADATA,
            )
            .record(took.as_secs_f64());
    }

    /// Counts a verification of what landed by its outcome (`verified`, `quarantined`).
    pub fn verified(&self, outcome: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "hoist_server_verifications_total",
                    vec![Label::new("outcome", outcome)],
                ),
                &METADATA,
            )
            .increment(1);
    }

    /// Everything, in Prometheus's text format; `rate_limit_fallbacks` is how many rate
    /// checks ran on this instance's own buckets because Redis did not answer.
    pub fn render(&self, rate_limit_fallbacks: u64) -> String {
        self.recorder
            .register_counter(
                &Key::from_name("hoist_server_rate_limit_fallbacks_total"),
                &METADATA,
            )
            .absolute(rate_limit_fallbacks);
        self.handle.render()
    }
}
