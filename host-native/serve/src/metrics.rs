//! `/metrics` in the Prometheus text format (prometheus-client): refreshes, their
//! failures and latency, fallbacks to the API key, tokens served by source, and request
//! latency by route.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabel {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServedLabels {
    profile: String,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    status: u16,
}

fn latency() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    refreshes: Family<ProfileLabel, Counter>,
    refresh_failures: Family<ProfileLabel, Counter>,
    refresh_seconds: Family<ProfileLabel, Histogram, fn() -> Histogram>,
    fallbacks: Family<ProfileLabel, Counter>,
    served: Family<ServedLabels, Counter>,
    requests: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub sessions: Gauge,
    pub live_clients: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let refreshes = Family::<ProfileLabel, Counter>::default();
        let refresh_failures = Family::<ProfileLabel, Counter>::default();
        let refresh_seconds =
            Family::<ProfileLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let fallbacks = Family::<ProfileLabel, Counter>::default();
        let served = Family::<ServedLabels, Counter>::default();
        let requests =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let sessions = Gauge::default();
        let live_clients = Gauge::default();
        registry.register(
            "refreshes",
            "Token requests that went to the provider and got a token",
            refreshes.clone(),
        );
        registry.register(
            "refresh_failures",
            "Token requests to the provider that failed",
            refresh_failures.clone(),
        );
        registry.register(
            "refresh_seconds",
            "Time to get a token from the provider",
            refresh_seconds.clone(),
        );
        registry.register(
            "fallbacks",
            "Times OAuth was unavailable and the API key was served",
            fallbacks.clone(),
        );
        registry.register(
            "tokens_served",
            "Credentials handed out, by source",
            served.clone(),
        );
        registry.register(
            "http_request_seconds",
            "Requests to the service, by route and status",
            requests.clone(),
        );
        registry.register("sessions", "Stored sessions", sessions.clone());
        registry.register(
            "live_clients",
            "Sessions with a running client",
            live_clients.clone(),
        );
        Self {
            registry,
            refreshes,
            refresh_failures,
            refresh_seconds,
            fallbacks,
            served,
            requests,
            sessions,
            live_clients,
        }
    }
}

impl Metrics {
    pub fn refreshed(&self, profile: &str, took: Duration) {
        let label = ProfileLabel {
            profile: profile.to_owned(),
        };
        self.refreshes.get_or_create(&label).inc();
        self.refresh_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    pub fn refresh_failed(&self, profile: &str) {
        self.refresh_failures
            .get_or_create(&ProfileLabel {
                profile: profile.to_owned(),
            })
            .inc();
    }

    pub fn fallback(&self, profile: &str) {
        self.fallbacks
            .get_or_create(&ProfileLabel {
                profile: profile.to_owned(),
            })
            .inc();
    }

    pub fn served(&self, profile: &str, source: &'static str) {
        self.served
            .get_or_create(&ServedLabels {
                profile: profile.to_owned(),
                source,
            })
            .inc();
    }

    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteLabels { route, status })
            .observe(took.as_secs_f64());
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
