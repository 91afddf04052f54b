//! Connection counters for Prometheus: how many clients come, how many are turned
//! away and why, how many are connected now.

use prometheus::{register_int_counter_vec, register_int_gauge_vec, IntCounterVec, IntGaugeVec};
use std::sync::OnceLock;

pub(crate) struct Metrics {
    /// By listener kind and outcome: accepted, refused_total_limit, refused_per_ip_limit.
    pub connections: IntCounterVec,
    pub active: IntGaugeVec,
    /// How sessions ended: quit, timeout, errors, shutdown, tls_failed, closed...
    pub ends: IntCounterVec,
}

pub(crate) fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        connections: register_int_counter_vec!(
            "portcullis_smtp_connections_total",
            "SMTP connections by listener and whether they were admitted",
            &["listener", "result"]
        )
        .expect("metric registers once"),
        active: register_int_gauge_vec!(
            "portcullis_smtp_connections_active",
            "SMTP sessions open now",
            &["listener"]
        )
        .expect("metric registers once"),
        ends: register_int_counter_vec!(
            "portcullis_smtp_sessions_ended_total",
            "SMTP sessions by how they ended",
            &["end"]
        )
        .expect("metric registers once"),
    })
}

/// Counts a session as active for as long as it lives.
pub(crate) struct ActiveGuard(&'static str);

impl ActiveGuard {
    pub fn new(listener: &'static str) -> ActiveGuard {
        metrics().active.with_label_values(&[listener]).inc();
        ActiveGuard(listener)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        metrics().active.with_label_values(&[self.0]).dec();
    }
}
