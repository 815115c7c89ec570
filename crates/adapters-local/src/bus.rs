//! `EventBus` in-process: PutEvents entries are wrapped the way EventBridge wraps them
//! (new `id` per put, account, region, time) and delivered to every queue whose rule
//! pattern matches, like an EventBridge rule with an SQS target.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auditlog::InboundMessage;
use envelope::pattern::EventPattern;
use envelope::{BusError, EntryOutcome, EventBus, PutEventsEntry, entry_size};
use serde_json::{Value, json};

/// An SQS-like queue: messages in arrival order, received in batches bounded by count and
/// by total body bytes (Lambda's 6 MB invocation payload).
#[derive(Debug, Default)]
pub struct LocalQueue {
    messages: Mutex<VecDeque<InboundMessage>>,
    bytes: std::sync::atomic::AtomicUsize,
}

impl LocalQueue {
    pub fn push(&self, m: InboundMessage) {
        if let Ok(mut q) = self.messages.lock() {
            self.bytes
                .fetch_add(m.body.len(), std::sync::atomic::Ordering::Relaxed);
            q.push_back(m);
        }
    }

    /// Total body bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.messages.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max_count` messages whose bodies, plus `overhead` bytes each for the
    /// record's other fields, add up to at most `max_bytes` (always at least one message
    /// when the queue is not empty).
    pub fn receive(
        &self,
        max_count: usize,
        max_bytes: usize,
        overhead: usize,
    ) -> Vec<InboundMessage> {
        let Ok(mut q) = self.messages.lock() else {
            return vec![];
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(m) = q.front() {
            let size = m.body.len() + overhead;
            if !out.is_empty() && (out.len() >= max_count || bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            if let Some(m) = q.pop_front() {
                self.bytes
                    .fetch_sub(m.body.len(), std::sync::atomic::Ordering::Relaxed);
                out.push(m);
            }
        }
        out
    }
}

/// Random-looking v4 UUIDs from one random seed and a counter: unique per bus, and
/// without a getrandom system call per event (two per event were 15% of the demo).
struct IdSource {
    seed: u128,
    counter: std::sync::atomic::AtomicU64,
}

impl IdSource {
    fn new() -> Self {
        Self {
            seed: uuid::Uuid::new_v4().as_u128(),
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // splitmix64 of the counter spreads the bits; the seed makes buses distinct
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bits = self.seed ^ (u128::from(z) << 64 | u128::from(n));
        uuid::Builder::from_random_bytes(bits.to_be_bytes())
            .into_uuid()
            .hyphenated()
            .to_string()
    }
}

struct Rule {
    pattern: EventPattern,
    target: Arc<LocalQueue>,
}

pub struct InProcessBus {
    rules: Vec<Rule>,
    ids: IdSource,
    account: String,
    region: String,
    max_entry_bytes: usize,
}

impl InProcessBus {
    pub fn new(max_entry_bytes: usize) -> Self {
        Self {
            rules: Vec::new(),
            ids: IdSource::new(),
            account: "000000000000".into(),
            region: "local".into(),
            max_entry_bytes,
        }
    }

    pub fn add_rule(&mut self, pattern: EventPattern, target: Arc<LocalQueue>) {
        self.rules.push(Rule { pattern, target });
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> Result<Vec<EntryOutcome>, BusError> {
        if entries.len() > envelope::PUT_EVENTS_MAX_ENTRIES {
            return Err(BusError::Permanent(format!(
                "{} entries in one request, more than 10",
                entries.len()
            )));
        }
        let total: usize = entries.iter().map(entry_size).sum();
        if total > self.max_entry_bytes {
            return Err(BusError::Permanent(format!(
                "request is {total} bytes, over {}",
                self.max_entry_bytes
            )));
        }
        Ok(entries
            .iter()
            .map(|e| {
                let detail: Value = match serde_json::from_str(&e.detail) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return EntryOutcome::Failed {
                            code: "MalformedDetail".into(),
                            message: "Detail is not a JSON object".into(),
                        };
                    }
                };
                let id = self.ids.next();
                let event = json!({
                    "version": "0",
                    "id": id,
                    "detail-type": e.detail_type,
                    "source": e.source,
                    "account": self.account,
                    "time": e.time.clone().unwrap_or_else(chrono_now),
                    "region": self.region,
                    "resources": e.resources,
                    "detail": detail,
                });
                let body = event.to_string();
                for rule in &self.rules {
                    if rule.pattern.matches(&event) {
                        rule.target.push(InboundMessage {
                            message_id: self.ids.next(),
                            body: body.clone(),
                        });
                    }
                }
                EntryOutcome::Accepted { bus_event_id: id }
            })
            .collect())
    }
}

/// EventBridge stamps the receive time when the entry has none.
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_bounds_count_and_bytes() {
        let q = LocalQueue::default();
        for i in 0..10 {
            q.push(InboundMessage {
                message_id: i.to_string(),
                body: "x".repeat(100),
            });
        }
        assert_eq!(q.receive(3, 10_000, 0).len(), 3);
        assert_eq!(q.bytes(), 700);
        assert_eq!(q.receive(100, 250, 0).len(), 2);
        assert_eq!(q.receive(100, 250, 50).len(), 1);
        assert_eq!(
            q.receive(100, 10, 0).len(),
            1,
            "an oversize message still makes progress"
        );
        assert_eq!(q.len(), 3);
        assert_eq!(q.bytes(), 300);
    }
}
