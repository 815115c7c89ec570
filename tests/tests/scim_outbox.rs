//! Every committed SCIM change reaches the audit log, even if the process dies between
//! the commit and the publication: the outbox relay publishes it later, under the
//! event_id assigned at commit time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use adapters_local::{InProcessBus, LocalQueue, SqliteScimStore};
use async_trait::async_trait;
use auditlog::memory::{MemoryBlobStore, MemoryDedupeStore};
use auditlog::{Subscriber, SubscriberConfig, SystemClock, TenantReader};
use envelope::pattern::EventPattern;
use envelope::{
    Actor, ActorType, BusError, EntryOutcome, EventBus, Publisher, PublisherConfig, PutEventsEntry,
    SchemaRegistry, TenantId,
};
use scim::{Caller, OutboxRelay, ResourceKind, ScimService, ScimStore, Shape};
use serde_json::json;

fn caller() -> Caller {
    Caller {
        tenant: TenantId::parse("acme").unwrap(),
        actor: Actor {
            kind: ActorType::Idp,
            id: "entra".into(),
            name: Some("Microsoft Entra ID".into()),
        },
        policy: scim::CompatPolicy::default(),
    }
}

fn bus() -> (InProcessBus, Arc<LocalQueue>) {
    let queue = Arc::new(LocalQueue::default());
    let mut bus = InProcessBus::new(envelope::PUT_EVENTS_MAX_BYTES);
    bus.add_rule(
        EventPattern::parse(r#"{"account": [{"exists": true}]}"#).unwrap(),
        queue.clone(),
    );
    (bus, queue)
}

fn publisher<B: EventBus>(bus: B, attempts: u32) -> Publisher<B> {
    let config = PublisherConfig {
        max_attempts: attempts,
        base_backoff: std::time::Duration::from_millis(1),
        ..PublisherConfig::default()
    };
    Publisher::new(bus, SchemaRegistry::builtin().unwrap(), config)
}

/// Provisions a user and a group with that user, as an IdP would.
async fn provision(service: &ScimService) -> String {
    let c = caller();
    let (user, _) = service
        .create(
            &c,
            ResourceKind::User,
            json!({"userName": "ada@acme.test", "active": true}),
            &Shape::default(),
        )
        .await
        .unwrap();
    let uid = user["id"].as_str().unwrap().to_owned();
    service
        .create(
            &c,
            ResourceKind::Group,
            json!({"displayName": "Admins", "members": [{"value": uid}]}),
            &Shape::default(),
        )
        .await
        .unwrap();
    uid
}

#[tokio::test]
async fn a_change_committed_before_a_crash_is_published_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.sqlite");
    {
        let store = Arc::new(SqliteScimStore::open(&path).unwrap());
        provision(&ScimService::new(store, "http://localhost")).await;
        // the process dies here: committed, never published
    }
    let store = Arc::new(SqliteScimStore::open(&path).unwrap());
    let pending = store.outbox_pending(100).await.unwrap();
    assert_eq!(
        pending.len(),
        3,
        "user created, group created, member added"
    );

    let (bus, queue) = bus();
    let relay = OutboxRelay::new(store.clone(), publisher(bus, 3));
    let report = relay.drain(100).await.unwrap();
    assert_eq!(
        (report.published, report.failed, report.dead_lettered),
        (3, 0, 0)
    );
    assert!(store.outbox_pending(100).await.unwrap().is_empty());
    assert_eq!(
        relay.run_once(100).await.unwrap().published,
        0,
        "nothing twice"
    );

    // and the audit log has them, with the IdP as actor
    let blobs = Arc::new(MemoryBlobStore::default());
    let sub = Subscriber::new(
        Arc::new(MemoryDedupeStore::default()),
        blobs.clone(),
        SystemClock,
        Arc::new(SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    let out = sub.handle(&queue.receive(100, usize::MAX, 0)).await;
    assert_eq!(out.stats.written, 3);
    let rows = TenantReader::new(blobs)
        .read(&caller().tenant, None, None)
        .await
        .unwrap();
    let mut types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "scim.group.created",
            "scim.group.member_added",
            "scim.user.created"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.actor_type == "idp" && r.actor_id == "entra" && r.producer == "scim-api")
    );
    let ids: std::collections::BTreeSet<String> = pending
        .iter()
        .map(|p| p.entry.event_id.to_string())
        .collect();
    assert!(
        rows.iter().all(|r| ids.contains(r.event_id.as_str())),
        "the event_id assigned at commit time"
    );
}

/// Fails every entry of the first `n` calls with InternalFailure.
struct Outage<B> {
    inner: B,
    calls_left: AtomicUsize,
}

#[async_trait]
impl<B: EventBus> EventBus for Outage<B> {
    async fn put_events(&self, entries: &[PutEventsEntry]) -> Result<Vec<EntryOutcome>, BusError> {
        if self
            .calls_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(entries
                .iter()
                .map(|_| EntryOutcome::Failed {
                    code: "InternalFailure".into(),
                    message: "outage".into(),
                })
                .collect());
        }
        self.inner.put_events(entries).await
    }
}

#[tokio::test]
async fn a_bus_outage_keeps_events_pending_and_a_crash_after_publish_only_duplicates() {
    let store = Arc::new(SqliteScimStore::in_memory().unwrap());
    provision(&ScimService::new(store.clone(), "http://localhost")).await;
    let (inner_bus, queue) = bus();
    let outage = Outage {
        inner: inner_bus,
        calls_left: AtomicUsize::new(1),
    };
    let relay = OutboxRelay::new(store.clone(), publisher(outage, 1));
    let r = relay.run_once(100).await.unwrap();
    assert_eq!((r.published, r.failed), (0, 3));
    assert_eq!(
        store.outbox_pending(100).await.unwrap().len(),
        3,
        "nothing lost"
    );
    assert!(queue.is_empty());
    let r = relay.run_once(100).await.unwrap();
    assert_eq!(r.published, 3);

    // a crash between publish and ack: the same events go out again...
    let (bus2, queue2) = bus();
    let store2 = Arc::new(SqliteScimStore::in_memory().unwrap());
    provision(&ScimService::new(store2.clone(), "http://localhost")).await;
    let crashing = AckCrash {
        inner: store2.clone(),
        crashes_left: AtomicUsize::new(1),
    };
    let relay2 = OutboxRelay::new(Arc::new(crashing), publisher(bus2, 1));
    assert!(
        relay2.run_once(100).await.is_err(),
        "published, then died before the ack"
    );
    assert_eq!(
        relay2.run_once(100).await.unwrap().published,
        3,
        "published again"
    );
    let first = queue2.receive(100, usize::MAX, 0);
    assert_eq!(first.len(), 6);
    // ...and the subscriber keeps one copy of each
    let blobs = Arc::new(MemoryBlobStore::default());
    let sub = Subscriber::new(
        Arc::new(MemoryDedupeStore::default()),
        blobs.clone(),
        SystemClock,
        Arc::new(SchemaRegistry::builtin().unwrap()),
        SubscriberConfig::default(),
    );
    let out = sub.handle(&first).await;
    assert_eq!((out.stats.written, out.stats.duplicates), (3, 3));
}

/// The store, whose first outbox acknowledgement fails: the process died after
/// publishing and before acknowledging.
struct AckCrash {
    inner: Arc<SqliteScimStore>,
    crashes_left: AtomicUsize,
}

#[async_trait]
impl ScimStore for AckCrash {
    async fn create(
        &self,
        t: &TenantId,
        r: &scim::Resource,
        e: &[scim::OutboxEntry],
    ) -> Result<(), scim::StoreError> {
        self.inner.create(t, r, e).await
    }
    async fn get(
        &self,
        t: &TenantId,
        k: ResourceKind,
        id: &str,
    ) -> Result<scim::Resource, scim::StoreError> {
        self.inner.get(t, k, id).await
    }
    async fn find_unique(
        &self,
        t: &TenantId,
        a: scim::UniqueAttr,
        v: &str,
    ) -> Result<Option<scim::Resource>, scim::StoreError> {
        self.inner.find_unique(t, a, v).await
    }
    async fn update(
        &self,
        t: &TenantId,
        r: &scim::Resource,
        v: u64,
        e: &[scim::OutboxEntry],
    ) -> Result<(), scim::StoreError> {
        self.inner.update(t, r, v, e).await
    }
    async fn delete(
        &self,
        t: &TenantId,
        k: ResourceKind,
        id: &str,
        v: Option<u64>,
        e: &[scim::OutboxEntry],
    ) -> Result<(), scim::StoreError> {
        self.inner.delete(t, k, id, v, e).await
    }
    async fn list(
        &self,
        t: &TenantId,
        k: ResourceKind,
        a: Option<&str>,
        l: usize,
    ) -> Result<Vec<scim::Resource>, scim::StoreError> {
        self.inner.list(t, k, a, l).await
    }
    async fn add_members(
        &self,
        t: &TenantId,
        g: &str,
        m: &[String],
        e: scim::MemberEvent<'_>,
    ) -> Result<Vec<String>, scim::StoreError> {
        self.inner.add_members(t, g, m, e).await
    }
    async fn remove_members(
        &self,
        t: &TenantId,
        g: &str,
        m: &[String],
        e: scim::MemberEvent<'_>,
    ) -> Result<Vec<String>, scim::StoreError> {
        self.inner.remove_members(t, g, m, e).await
    }
    async fn members(
        &self,
        t: &TenantId,
        g: &str,
        a: Option<&str>,
        l: usize,
    ) -> Result<Vec<String>, scim::StoreError> {
        self.inner.members(t, g, a, l).await
    }
    async fn groups_of(&self, t: &TenantId, m: &str) -> Result<Vec<String>, scim::StoreError> {
        self.inner.groups_of(t, m).await
    }
    async fn outbox_pending(&self, l: usize) -> Result<Vec<scim::PendingEvent>, scim::StoreError> {
        self.inner.outbox_pending(l).await
    }
    async fn outbox_dead_letter(
        &self,
        e: &[(scim::PendingEvent, String)],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), scim::StoreError> {
        self.inner.outbox_dead_letter(e, at).await
    }
    async fn outbox_dead_letters(
        &self,
        l: usize,
    ) -> Result<Vec<scim::DeadLetter>, scim::StoreError> {
        self.inner.outbox_dead_letters(l).await
    }
    async fn outbox_ack(&self, r: &[String]) -> Result<(), scim::StoreError> {
        if self
            .crashes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(scim::StoreError::Unavailable("process died".into()));
        }
        self.inner.outbox_ack(r).await
    }
}

/// Commits `bad` changes whose events fail their schema (a producer bug), then `good`
/// valid ones, oldest first, straight into the store's outbox.
async fn outbox_with_poison(store: &dyn ScimStore, tag: &str, bad: usize, good: usize) {
    let tenant = TenantId::parse(&format!("{tag}-acme")).unwrap();
    let at = chrono::Utc::now();
    for i in 0..bad + good {
        let valid = i >= bad;
        let id = format!("u{i}");
        let resource = scim::Resource {
            id: id.clone(),
            kind: ResourceKind::User,
            version: 1,
            created: at,
            last_modified: at,
            body: json!({"userName": format!("{tag}-{i}@acme.test")}),
        };
        let payload = if valid {
            json!({"id": id, "userName": format!("{tag}-{i}@acme.test")})
        } else {
            json!({"id": id, "active": "not a boolean"}) // no userName, wrong type
        };
        let event = scim::OutboxEntry {
            event_id: envelope::EventId::new_v7(),
            tenant_id: tenant.clone(),
            event_type: "scim.user.created".into(),
            occurred_at: at + chrono::Duration::milliseconds(i as i64),
            actor: caller().actor,
            payload,
        };
        store.create(&tenant, &resource, &[event]).await.unwrap();
    }
}

/// Loss path: once the relay's batch was all invalid events, it published nothing
/// and stopped there for good. Now they are dead-lettered with the reason and the
/// valid events behind them flow on.
async fn poison_at_the_head_of_the_outbox_is_dead_lettered(
    store: Arc<dyn ScimStore>,
    tag: &str,
    bad: usize,
    batch: usize,
) {
    outbox_with_poison(store.as_ref(), tag, bad, 3).await;
    let (bus, queue) = bus();
    let relay = OutboxRelay::new(store.clone(), publisher(bus, 3));
    let report = relay.drain(batch).await.unwrap();
    assert_eq!((report.published, report.dead_lettered), (3, bad), "{tag}");
    assert_eq!(queue.len(), 3, "{tag}: the valid events reached the bus");
    assert!(
        store.outbox_pending(1000).await.unwrap().is_empty(),
        "{tag}"
    );
    let dead = store.outbox_dead_letters(10_000).await.unwrap();
    let mine: Vec<_> = dead
        .iter()
        .filter(|d| d.entry.tenant_id.as_str() == format!("{tag}-acme"))
        .collect();
    assert_eq!(mine.len(), bad, "{tag}: countable");
    assert!(
        mine.iter()
            .all(|d| d.reason.contains("userName") && d.entry.event_type == "scim.user.created"),
        "{tag}: {:?}",
        mine.first()
    );
    // a second run changes nothing
    let again = relay.drain(batch).await.unwrap();
    assert_eq!((again.published, again.dead_lettered), (0, 0), "{tag}");
}

#[tokio::test]
async fn poison_at_the_head_of_the_outbox_is_dead_lettered_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteScimStore::open(&dir.path().join("scim.sqlite")).unwrap());
    // more than the relay's batch of 500: the old relay never got past them
    poison_at_the_head_of_the_outbox_is_dead_lettered(store, "sqlite", 510, 500).await;
}

#[tokio::test]
async fn poison_at_the_head_of_the_outbox_is_dead_lettered_dynamodb() {
    let c = auditlog_tests::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&c);
    let table = auditlog_tests::new_scim_table(&ddb).await;
    let store = Arc::new(adapters_aws::DynamoDbScimStore::new(ddb, table));
    poison_at_the_head_of_the_outbox_is_dead_lettered(store, "ddb", 12, 10).await;
}

/// Ids counted from 1: `u-1`, `u-2`, ... and the event ids of one fixed UUID prefix.
struct CountedIds(std::sync::atomic::AtomicU64);

impl scim::IdSource for CountedIds {
    fn resource_id(&self) -> String {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        format!("u-{n}")
    }
    fn event_id(&self) -> envelope::EventId {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        envelope::EventId::parse(&format!("00000000-0000-7000-8000-{n:012}")).unwrap()
    }
}

#[tokio::test]
async fn the_service_stamps_writes_with_its_clock_and_ids_from_its_source() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T09:30:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let clock = envelope::clock::FixedClock::new(at);
    let store = Arc::new(SqliteScimStore::in_memory().unwrap());
    let service = ScimService::new(store.clone(), "http://localhost")
        .with_clock(Arc::new(clock.clone()))
        .with_ids(Arc::new(CountedIds(Default::default())));
    let uid = provision(&service).await;
    assert_eq!(uid, "u-1");
    let (user, _) = service
        .get(&caller(), ResourceKind::User, &uid, &Shape::default())
        .await
        .unwrap();
    assert_eq!(user["meta"]["created"], "2026-03-01T09:30:00.000Z");
    let pending = store.outbox_pending(10).await.unwrap();
    assert!(pending.iter().all(|p| p.entry.occurred_at == at));
    assert_eq!(
        pending[0].entry.event_id.as_str(),
        "00000000-0000-7000-8000-000000000002",
        "the event of the user's creation, after its id"
    );
    // a week later, on the same clock: lastModified moves, created does not
    clock.advance(chrono::Duration::days(7));
    let patch = scim::service::parse_patch(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .unwrap();
    let (user, _) = service
        .patch(
            &caller(),
            ResourceKind::User,
            &uid,
            &patch,
            None,
            &Shape::default(),
        )
        .await
        .unwrap();
    assert_eq!(user["meta"]["created"], "2026-03-01T09:30:00.000Z");
    assert_eq!(user["meta"]["lastModified"], "2026-03-08T09:30:00.000Z");
}
