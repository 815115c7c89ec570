//! The SQS event source mapping, emulated over a `LocalQueue`: what Lambda does between
//! the audit queue and the subscriber. Batches are cut like Lambda's (at most 10,000
//! messages and 6 MB of payload with each record's envelope), a batching window waits
//! for a full batch while more is coming, the messages a batch reports as failed come
//! back after a visibility delay, and a message received `max_receives` times goes to a
//! dead-letter queue (the queue's redrive policy). One home for the CLI's `demo`,
//! `ingest`, `serve` and `soak`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auditlog::{BatchOutcome, BatchStats, InboundMessage, RetryReason};

use crate::bus::LocalQueue;

/// Lambda's synchronous invocation payload limit, which bounds an SQS batch.
pub const LAMBDA_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// What an SQS record adds around its body in the Lambda event (ids, attributes, ARN).
pub const SQS_RECORD_OVERHEAD: usize = 600;
/// The event source mapping's largest batch.
pub const SQS_MAX_BATCH: usize = 10_000;

/// Called with each batch's outcome and size (progress bars).
pub type OnBatch = Arc<dyn Fn(&BatchOutcome, usize) + Send + Sync>;

/// What handles one batch: the subscriber, or a test double.
#[async_trait]
pub trait BatchHandler: Send + Sync {
    async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome;
}

#[async_trait]
impl<D, B, C> BatchHandler for auditlog::Subscriber<D, B, C>
where
    D: auditlog::DedupeStore,
    B: auditlog::BlobStore,
    C: auditlog::Clock,
{
    async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome {
        self.handle(batch).await
    }
}

#[async_trait]
impl<T: BatchHandler + ?Sized> BatchHandler for Arc<T> {
    async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome {
        (**self).handle_batch(batch).await
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub record_overhead: usize,
    /// Like `MaximumBatchingWindowInSeconds`: wait this long for a full batch.
    pub batching_window: Duration,
    /// How long a failed message stays invisible before it is received again.
    pub redelivery_delay: Duration,
    /// Receives before a message moves to the dead-letter queue (`maxReceiveCount`).
    pub max_receives: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_messages: SQS_MAX_BATCH,
            max_bytes: LAMBDA_PAYLOAD_BYTES,
            record_overhead: SQS_RECORD_OVERHEAD,
            batching_window: Duration::from_secs(1),
            redelivery_delay: Duration::from_millis(50),
            max_receives: 1000,
        }
    }
}

/// What a run delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Each message counted once, when it was finally decided (or dead-lettered).
    pub stats: BatchStats,
    pub batches: usize,
    /// Messages moved to the dead-letter queue after `max_receives` receives.
    pub dead_lettered: usize,
    /// Why the dead-lettered messages failed their last receive.
    pub dead_letter_reasons: BTreeMap<RetryReason, usize>,
}

impl DeliveryReport {
    fn add(&mut self, other: &DeliveryReport) {
        self.stats += other.stats;
        self.batches += other.batches;
        self.dead_lettered += other.dead_lettered;
        for (k, v) in &other.dead_letter_reasons {
            *self.dead_letter_reasons.entry(*k).or_insert(0) += v;
        }
    }
}

/// A queue, its dead-letter queue, and the receive counts of its messages.
pub struct Delivery {
    queue: Arc<LocalQueue>,
    dead_letters: Arc<LocalQueue>,
    receives: Mutex<HashMap<String, u32>>,
    config: DeliveryConfig,
}

impl Delivery {
    pub fn new(queue: Arc<LocalQueue>, config: DeliveryConfig) -> Arc<Self> {
        Arc::new(Self {
            queue,
            dead_letters: Arc::new(LocalQueue::default()),
            receives: Mutex::new(HashMap::new()),
            config,
        })
    }

    pub fn queue(&self) -> &Arc<LocalQueue> {
        &self.queue
    }

    /// Messages that failed `max_receives` times, as they were received.
    pub fn dead_letters(&self) -> &Arc<LocalQueue> {
        &self.dead_letters
    }

    fn receive(&self) -> Vec<InboundMessage> {
        self.queue.receive(
            self.config.max_messages,
            self.config.max_bytes,
            self.config.record_overhead,
        )
    }

    /// Receives one batch, hands it over, and puts the failed messages back (or in the
    /// dead-letter queue). `None` when the queue was empty.
    pub async fn deliver_once<H: BatchHandler + ?Sized>(
        &self,
        handler: &H,
    ) -> Option<(BatchOutcome, DeliveryReport)> {
        let batch = self.receive();
        if batch.is_empty() {
            return None;
        }
        let out = handler.handle_batch(&batch).await;
        let report = self.settle(&batch, &out, true).await;
        Some((out, report))
    }

    /// Puts a batch's failed messages back after the visibility delay, or into the
    /// dead-letter queue once they have been received `max_receives` times.
    async fn settle(
        &self,
        batch: &[InboundMessage],
        out: &BatchOutcome,
        wait: bool,
    ) -> DeliveryReport {
        let failed: HashSet<&String> = out.failed_message_ids.iter().collect();
        let mut report = DeliveryReport {
            stats: out.stats,
            batches: 1,
            ..DeliveryReport::default()
        };
        // a redelivered message is counted once, when it is finally decided
        report.stats.received -= failed.len().min(report.stats.received);
        if failed.is_empty() {
            return report;
        }
        if wait {
            tokio::time::sleep(self.config.redelivery_delay).await;
        }
        let mut receives = self.receives.lock().unwrap_or_else(|e| e.into_inner());
        for m in batch.iter().filter(|m| failed.contains(&m.message_id)) {
            let n = receives.entry(m.message_id.clone()).or_insert(0);
            *n += 1;
            if *n >= self.config.max_receives {
                receives.remove(&m.message_id);
                self.dead_letters.push(m.clone());
                report.dead_lettered += 1;
                report.stats.received += 1;
                if let Some(why) = out.retry_reasons.get(&m.message_id).copied() {
                    *report.dead_letter_reasons.entry(why).or_insert(0) += 1;
                }
            } else {
                self.queue.push(m.clone());
            }
        }
        report
    }

    /// Drains the queue with `consumers` concurrent consumers (Lambda's concurrency)
    /// until it is empty and `done` says nothing more will come. `on_batch` sees each
    /// batch's outcome (progress bars).
    pub async fn run<H: BatchHandler + 'static>(
        self: &Arc<Self>,
        handler: Arc<H>,
        consumers: usize,
        done: Arc<AtomicBool>,
        on_batch: OnBatch,
    ) -> DeliveryReport {
        let tasks: Vec<_> = (0..consumers.max(1))
            .map(|_| {
                let me = self.clone();
                let handler = handler.clone();
                let done = done.clone();
                let on_batch = on_batch.clone();
                tokio::spawn(async move { me.consume(handler, done, on_batch).await })
            })
            .collect();
        let mut total = DeliveryReport::default();
        for t in tasks {
            match t.await {
                Ok(r) => total.add(&r),
                Err(e) => tracing::error!(error = %e, "consumer task failed"),
            }
        }
        total
    }

    async fn consume<H: BatchHandler>(
        &self,
        handler: Arc<H>,
        done: Arc<AtomicBool>,
        on_batch: OnBatch,
    ) -> DeliveryReport {
        let done = || done.load(Ordering::SeqCst);
        let mut total = DeliveryReport::default();
        let mut window_started: Option<Instant> = None;
        loop {
            // Like MaximumBatchingWindowInSeconds: wait for a full batch while more is coming.
            let full = self.queue.bytes() + self.queue.len() * self.config.record_overhead
                >= self.config.max_bytes
                || self.queue.len() >= self.config.max_messages;
            let waited = window_started.get_or_insert_with(Instant::now).elapsed();
            if !full && !done() && waited < self.config.batching_window {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            window_started = None;
            let batch = self.receive();
            if batch.is_empty() {
                if done() && self.queue.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let out = handler.handle_batch(&batch).await;
            on_batch(&out, batch.len());
            let report = self.settle(&batch, &out, true).await;
            total.add(&report);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every message whose body is in `failing`, `times` times each.
    struct Flaky {
        failing: Mutex<HashMap<String, u32>>,
    }

    #[async_trait]
    impl BatchHandler for Flaky {
        async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome {
            let mut failing = self.failing.lock().unwrap();
            let mut out = BatchOutcome::default();
            out.stats.received = batch.len();
            for m in batch {
                match failing.get_mut(&m.body) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        out.failed_message_ids.push(m.message_id.clone());
                        out.retry_reasons
                            .insert(m.message_id.clone(), RetryReason::WriteFailed);
                    }
                    _ => out.stats.written += 1,
                }
            }
            out.stats.retried = out.failed_message_ids.len();
            out
        }
    }

    fn message(i: usize) -> InboundMessage {
        InboundMessage {
            message_id: format!("m{i}"),
            body: format!("b{i}"),
        }
    }

    #[tokio::test]
    async fn failed_messages_come_back_until_the_redrive_limit() {
        let queue = Arc::new(LocalQueue::default());
        for i in 0..10 {
            queue.push(message(i));
        }
        let delivery = Delivery::new(
            queue,
            DeliveryConfig {
                batching_window: Duration::ZERO,
                redelivery_delay: Duration::ZERO,
                max_receives: 3,
                ..DeliveryConfig::default()
            },
        );
        // b1 fails twice (then succeeds on its third receive), b2 always fails
        let handler = Arc::new(Flaky {
            failing: Mutex::new(HashMap::from([("b1".into(), 2), ("b2".into(), u32::MAX)])),
        });
        let report = delivery
            .run(
                handler,
                2,
                Arc::new(AtomicBool::new(true)),
                Arc::new(|_, _| {}),
            )
            .await;
        assert_eq!(report.stats.written, 9);
        assert_eq!(report.dead_lettered, 1);
        assert_eq!(report.stats.received, 10, "every message counted once");
        assert_eq!(
            report.dead_letter_reasons.get(&RetryReason::WriteFailed),
            Some(&1)
        );
        let dead = delivery.dead_letters().receive(10, usize::MAX, 0);
        assert_eq!(dead, vec![message(2)]);
        assert!(delivery.queue().is_empty());
    }

    #[tokio::test]
    async fn batches_are_cut_at_lambdas_payload_limit() {
        let queue = Arc::new(LocalQueue::default());
        for i in 0..5 {
            queue.push(InboundMessage {
                message_id: format!("m{i}"),
                body: "x".repeat(2 * 1024 * 1024),
            });
        }
        let delivery = Delivery::new(queue, DeliveryConfig::default());
        let handler = Flaky {
            failing: Mutex::new(HashMap::new()),
        };
        let (_, first) = delivery.deliver_once(&handler).await.unwrap();
        assert_eq!(
            first.stats.written, 2,
            "two 2 MiB bodies fit in 6 MB, three do not"
        );
        assert_eq!(delivery.queue().len(), 3);
    }
}
