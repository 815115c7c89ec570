//! Realistic generated traffic for `auditlog demo`: tenants with a skewed (Zipf) mix,
//! SCIM identity events and application events, reproducible from a seed.

use chrono::{DateTime, Duration, Utc};
use envelope::{Actor, ActorType, Detail, EventId, Metadata, OutgoingEvent, TenantId};
use serde_json::{Value, json};

/// splitmix64: small, fast, reproducible; quality is ample for test traffic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    pub fn uuid_v7(&mut self, at: DateTime<Utc>) -> EventId {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
        let r = self.next_u64();
        let hi = (ms << 16) | 0x7000 | (r & 0x0FFF);
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        let u = uuid::Uuid::from_u64_pair(hi, lo);
        EventId::parse(&u.hyphenated().to_string()).unwrap_or_else(|_| EventId::new_v7())
    }
}

/// Picks tenant indexes with probability proportional to 1 / rank^s.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n.max(1))
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

pub struct Traffic {
    rng: Rng,
    zipf: Zipf,
    tenants: Vec<TenantId>,
    now: DateTime<Utc>,
    /// Simulated time: events occur in order across `window`, ending at `now`, with a
    /// little jitter (as they reach a real bus: roughly in time order, not shuffled).
    window: Duration,
    step_ms: f64,
    produced: u64,
    pad: String,
}

const APP_EVENTS: &[(&str, &str, &str)] = &[
    ("app.document.viewed", "view", "document"),
    ("app.document.shared", "share", "document"),
    ("app.document.deleted", "delete", "document"),
    ("app.session.login", "login", "session"),
    ("app.settings.changed", "change_settings", "workspace"),
    ("app.apikey.created", "create_api_key", "api_key"),
];

impl Traffic {
    pub fn new(
        seed: u64,
        tenants: usize,
        zipf_s: f64,
        now: DateTime<Utc>,
        target_bytes: usize,
    ) -> Self {
        Self {
            rng: Rng::new(seed),
            zipf: Zipf::new(tenants, zipf_s),
            tenants: (0..tenants.max(1))
                .filter_map(|i| TenantId::parse(&format!("tenant-{i:04}")).ok())
                .collect(),
            now,
            window: Duration::hours(36),
            step_ms: 0.0,
            produced: 0,
            // ~1 KB events on the wire, like the figures in the issue
            pad: "x".repeat(target_bytes.saturating_sub(700)),
        }
    }

    /// Events occur across `window` ending at `now` (36 hours unless told).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Spreads `total` events evenly over the window.
    pub fn expect(&mut self, total: usize) {
        self.step_ms = self.window.num_milliseconds() as f64 / total.max(1) as f64;
    }

    pub fn next_event(&mut self) -> OutgoingEvent {
        let r = &mut self.rng;
        let tenant = self.tenants[self.zipf.sample(r) % self.tenants.len()].clone();
        let elapsed = (self.produced as f64 * self.step_ms) as i64 - (r.unit() * 2000.0) as i64;
        self.produced += 1;
        let at = self.now - self.window + Duration::milliseconds(elapsed.max(0));
        let user = r.below(5000);
        let (event_type, payload, actor) = if r.unit() < 0.35 {
            let group = r.below(50);
            match r.below(10) {
                0..=2 => (
                    "scim.user.created",
                    json!({"id": format!("u-{user}"), "userName": format!("user{user}@{tenant}.example"), "active": true, "displayName": format!("User {user}")}),
                    idp(r),
                ),
                3..=5 => (
                    "scim.user.updated",
                    json!({"id": format!("u-{user}"), "userName": format!("user{user}@{tenant}.example"), "changedAttributes": ["title", "department"]}),
                    idp(r),
                ),
                6 => (
                    "scim.user.deactivated",
                    json!({"id": format!("u-{user}"), "userName": format!("user{user}@{tenant}.example"), "active": false}),
                    idp(r),
                ),
                7 => (
                    "scim.group.member_removed",
                    json!({"group": {"id": format!("g-{group}"), "displayName": format!("Group {group}")}, "member": {"id": format!("u-{user}"), "type": "User"}}),
                    idp(r),
                ),
                _ => (
                    "scim.group.member_added",
                    json!({"group": {"id": format!("g-{group}"), "displayName": format!("Group {group}")}, "member": {"id": format!("u-{user}"), "type": "User", "display": format!("User {user}")}}),
                    idp(r),
                ),
            }
        } else {
            let (t, action, target) = APP_EVENTS[r.below(APP_EVENTS.len())];
            let outcome = if r.unit() < 0.03 {
                "denied"
            } else if r.unit() < 0.02 {
                "failure"
            } else {
                "success"
            };
            (
                t,
                json!({
                    "action": action,
                    "target": {"type": target, "id": format!("{target}-{}", r.below(100_000)), "name": format!("{target} {}", r.below(1000))},
                    "outcome": outcome,
                    "privileged": t == "app.settings.changed" || t == "app.apikey.created",
                    "details": {"client": "web", "note": self.pad}
                }),
                Actor {
                    kind: ActorType::User,
                    id: format!("u-{user}"),
                    name: Some(format!("user{user}@{tenant}.example")),
                },
            )
        };
        let r = &mut self.rng;
        OutgoingEvent {
            source: "auditlog.demo".into(),
            resources: vec![],
            detail: Detail {
                metadata: Metadata {
                    event_id: r.uuid_v7(at),
                    tenant_id: tenant,
                    event_type: event_type.into(),
                    schema_version: 1,
                    occurred_at: at,
                    producer: if event_type.starts_with("scim.") {
                        "scim-api".into()
                    } else {
                        "app".into()
                    },
                    actor,
                    correlation_id: Some(format!("c-{:016x}", r.next_u64())),
                    request_id: Some(format!("r-{:016x}", r.next_u64())),
                    source_ip: Some(format!(
                        "10.{}.{}.{}",
                        r.below(256),
                        r.below(256),
                        r.below(256)
                    )),
                    user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) demo".into()),
                },
                payload,
            },
        }
    }

    /// A message that can never be accepted, of one of several kinds.
    pub fn invalid_body(&mut self, valid: &OutgoingEvent) -> String {
        let detail: Value = serde_json::to_value(&valid.detail).unwrap_or(Value::Null);
        let mut event = json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": valid.detail.metadata.event_type,
            "source": "legacy.producer", "account": "000000000000", "time": "2026-11-21T00:00:00Z",
            "region": "local", "resources": [], "detail": detail,
        });
        match self.rng.below(5) {
            0 => return "{\"version\":\"0\",\"detail\":{\"metadata\":".into(),
            1 => event["detail"]["metadata"]["tenant_id"] = json!("../tenant-0000"),
            2 => event["detail"]["payload"] = json!({"unexpected": true}),
            3 => event["detail"]["metadata"]["event_type"] = json!("billing.invoice.paid"),
            _ => {
                if let Some(m) = event["detail"]["metadata"].as_object_mut() {
                    m.remove("tenant_id");
                }
            }
        }
        event.to_string()
    }

    pub fn unit(&mut self) -> f64 {
        self.rng.unit()
    }
}

fn idp(r: &mut Rng) -> Actor {
    let (id, name) = [
        ("entra", "Microsoft Entra ID"),
        ("okta", "Okta"),
        ("onelogin", "OneLogin"),
        ("jumpcloud", "JumpCloud"),
    ][r.below(4)];
    Actor {
        kind: ActorType::Idp,
        id: id.into(),
        name: Some(name.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_covers_the_range() {
        let z = Zipf::new(2000, 1.1);
        let mut r = Rng::new(7);
        let mut counts = vec![0usize; 2000];
        for _ in 0..100_000 {
            counts[z.sample(&mut r)] += 1;
        }
        assert!(
            counts[0] > counts[10] * 5,
            "{} vs {}",
            counts[0],
            counts[10]
        );
        assert!(counts.iter().filter(|c| **c > 0).count() > 1000);
    }

    #[test]
    fn generated_events_pass_the_registry() {
        let reg = envelope::SchemaRegistry::builtin().unwrap();
        let mut t = Traffic::new(1, 10, 1.1, Utc::now(), 1000);
        for _ in 0..500 {
            let e = t.next_event();
            let m = &e.detail.metadata;
            reg.validate(&m.event_type, m.schema_version, &e.detail.payload)
                .unwrap();
        }
    }

    #[test]
    fn same_seed_same_traffic() {
        let now = Utc::now();
        let a: Vec<_> = {
            let mut t = Traffic::new(5, 10, 1.1, now, 1000);
            (0..20).map(|_| t.next_event()).collect()
        };
        let b: Vec<_> = {
            let mut t = Traffic::new(5, 10, 1.1, now, 1000);
            (0..20).map(|_| t.next_event()).collect()
        };
        assert_eq!(a, b);
    }
}
