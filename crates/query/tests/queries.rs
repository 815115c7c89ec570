//! Every query in queries/ on a known event history, with the exact rows it must return;
//! and a one-tenant one-day query that reads only that partition's files.
//!
//! The history goes through the real code: bus events decoded and validated by the
//! envelope crate, turned into audit records, written as ingest files, days before
//! 2026-11-20 folded by the compactor, the last day left in the ingest tier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use adapters_local::LocalDirBlobStore;
use auditlog::{
    AuditRecord, BlobStore, Compactor, CompactorConfig, Tier, encode_parquet, ingest_object_key,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use envelope::SchemaRegistry;
use query::{Engine, find, to_rows};
use serde_json::{Value, json};

const ALICE: &str = "u-alice";
const BOB: &str = "u-bob";
const CAROL: &str = "u-carol";
const ADMINS: &str = "g-admins";

struct Ev {
    tenant: &'static str,
    n: u32,
    at: &'static str,
    event_type: &'static str,
    actor: (&'static str, &'static str),
    payload: Value,
}

fn event_id(n: u32) -> String {
    format!("0192f4a0-0000-7000-8000-{n:012}")
}

fn ts(at: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&Utc)
}

fn record(e: &Ev, bus_id: &str) -> AuditRecord {
    let body = json!({
        "version": "0", "id": bus_id, "detail-type": e.event_type, "source": "test",
        "account": "111122223333", "time": e.at, "region": "us-east-1", "resources": [],
        "detail": {
            "metadata": {
                "event_id": event_id(e.n), "tenant_id": e.tenant, "event_type": e.event_type,
                "schema_version": 1, "occurred_at": e.at, "producer": "test",
                "actor": {"type": e.actor.0, "id": e.actor.1},
                "source_ip": "203.0.113.7"
            },
            "payload": e.payload
        }
    });
    let registry = SchemaRegistry::builtin().unwrap();
    let text = body.to_string();
    let v = envelope::decode_bus_event(&text, &registry, 1 << 20)
        .unwrap_or_else(|err| panic!("event {}: {err}", e.n));
    AuditRecord::from_event(v, ts(e.at) + Duration::seconds(5))
}

fn member(n: u32, at: &'static str, added: bool, user: &str, name: &str) -> Ev {
    Ev {
        tenant: "acme",
        n,
        at,
        event_type: if added {
            "scim.group.member_added"
        } else {
            "scim.group.member_removed"
        },
        actor: ("idp", "okta"),
        payload: json!({"group": {"id": ADMINS, "displayName": "Admins"}, "member": {"id": user, "type": "User", "display": name}}),
    }
}

fn app(
    n: u32,
    tenant: &'static str,
    at: &'static str,
    user: &'static str,
    action: &str,
    target: &str,
    outcome: &str,
) -> Ev {
    Ev {
        tenant,
        n,
        at,
        event_type: "app.document.changed",
        actor: ("user", user),
        payload: json!({"action": action, "target": {"type": "document", "id": target}, "outcome": outcome}),
    }
}

fn history() -> Vec<Ev> {
    let idp = ("idp", "okta");
    vec![
        // 2026-11-18
        Ev {
            tenant: "acme",
            n: 1,
            at: "2026-11-18T09:00:00Z",
            event_type: "scim.user.created",
            actor: idp,
            payload: json!({"id": ALICE, "userName": "alice@acme.test"}),
        },
        Ev {
            tenant: "acme",
            n: 2,
            at: "2026-11-18T09:01:00Z",
            event_type: "scim.user.created",
            actor: idp,
            payload: json!({"id": BOB, "userName": "bob@acme.test"}),
        },
        Ev {
            tenant: "acme",
            n: 3,
            at: "2026-11-18T09:02:00Z",
            event_type: "scim.group.created",
            actor: idp,
            payload: json!({"id": ADMINS, "displayName": "Admins"}),
        },
        member(4, "2026-11-18T09:03:00Z", true, ALICE, "alice@acme.test"),
        member(5, "2026-11-18T09:04:00Z", true, BOB, "bob@acme.test"),
        app(
            6,
            "acme",
            "2026-11-18T10:00:00Z",
            ALICE,
            "share",
            "doc-1",
            "success",
        ),
        app(
            7,
            "acme",
            "2026-11-18T11:00:00Z",
            BOB,
            "delete",
            "doc-1",
            "denied",
        ),
        Ev {
            tenant: "acme",
            n: 8,
            at: "2026-11-18T12:00:00Z",
            event_type: "app.user.role_changed",
            actor: ("user", ALICE),
            payload: json!({"action": "role_change", "target": {"type": "user", "id": BOB}, "outcome": "success"}),
        },
        Ev {
            tenant: "globex",
            n: 9,
            at: "2026-11-18T13:00:00Z",
            event_type: "scim.user.created",
            actor: ("idp", "entra"),
            payload: json!({"id": "u-zed", "userName": "zed@globex.test"}),
        },
        app(
            10,
            "globex",
            "2026-11-18T14:00:00Z",
            "u-zed",
            "export",
            "report-9",
            "success",
        ),
        // 2026-11-19
        member(11, "2026-11-19T08:00:00Z", false, BOB, "bob@acme.test"),
        Ev {
            tenant: "acme",
            n: 12,
            at: "2026-11-19T09:00:00Z",
            event_type: "scim.user.deactivated",
            actor: idp,
            payload: json!({"id": BOB, "userName": "bob@acme.test", "active": false}),
        },
        app(
            13,
            "acme",
            "2026-11-19T09:30:00Z",
            BOB,
            "view",
            "doc-2",
            "success",
        ),
        app(
            14,
            "acme",
            "2026-11-19T10:00:00Z",
            ALICE,
            "view",
            "doc-2",
            "failure",
        ),
        // 2026-11-20: stays in the ingest tier
        Ev {
            tenant: "acme",
            n: 15,
            at: "2026-11-20T07:00:00Z",
            event_type: "scim.user.created",
            actor: idp,
            payload: json!({"id": CAROL, "userName": "carol@acme.test"}),
        },
        member(16, "2026-11-20T08:00:00Z", true, CAROL, "carol@acme.test"),
        Ev {
            tenant: "acme",
            n: 17,
            at: "2026-11-20T09:00:00Z",
            event_type: "scim.user.deleted",
            actor: idp,
            payload: json!({"id": ALICE, "userName": "alice@acme.test"}),
        },
    ]
}

/// Writes the history, compacts the days before 2026-11-20, then adds a stray ingest
/// file holding a second copy of event 1 and a conflicting copy of event 2.
async fn build(root: &std::path::Path) {
    let blobs = Arc::new(LocalDirBlobStore::open(root.to_path_buf()).unwrap());
    let mut by_day: std::collections::BTreeMap<NaiveDate, Vec<AuditRecord>> = Default::default();
    for e in history() {
        let r = record(&e, &format!("bus-{}", e.n));
        by_day.entry(r.dt()).or_default().push(r);
    }
    for (dt, records) in &by_day {
        let bytes = encode_parquet(records, Tier::Ingest, 1).unwrap();
        blobs
            .put(&ingest_object_key(*dt, records), bytes.into())
            .await
            .unwrap();
    }
    let compactor = Compactor::new(
        blobs.clone(),
        CompactorConfig {
            before: NaiveDate::from_ymd_opt(2026, 11, 20),
            ..CompactorConfig::default()
        },
    );
    compactor.run().await.unwrap();
    let h = history();
    let again = record(&h[0], "bus-1-redelivered");
    let mut changed = Ev {
        payload: json!({"id": BOB, "userName": "robert@acme.test"}),
        ..h.into_iter().nth(1).unwrap()
    };
    changed.n = 2;
    let conflict = record(&changed, "bus-2-conflict");
    let stray = vec![again, conflict];
    let dt = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
    let bytes = encode_parquet(&stray, Tier::Ingest, 1).unwrap();
    blobs
        .put(&ingest_object_key(dt, &stray), bytes.into())
        .await
        .unwrap();
}

async fn run(engine: &Engine, name: &str, params: &[(&str, &str)]) -> Vec<Vec<String>> {
    let q = find(name).unwrap();
    let values: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let batches = engine
        .run(&q, &values)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    to_rows(&batches).unwrap().1
}

fn col(rows: &[Vec<String>], i: usize) -> Vec<String> {
    rows.iter().map(|r| r[i].clone()).collect()
}

fn ids(ns: &[u32]) -> Vec<String> {
    ns.iter().map(|n| event_id(*n)).collect()
}

#[tokio::test]
async fn every_query_returns_exactly_the_expected_rows() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    let engine = Engine::open(dir.path()).await.unwrap();
    let acme_all = [
        ("tenant_id", "acme"),
        ("from", "2026-11-18"),
        ("to", "2026-11-21"),
    ];

    // who did what: the deduplicated view over both tiers, one tenant only
    let rows = run(&engine, "who_did_what", &acme_all).await;
    assert_eq!(
        col(&rows, 10),
        ids(&[1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17])
    );
    assert_eq!(
        rows[3],
        [
            "2026-11-18T09:03:00Z",
            "idp",
            "okta",
            "NULL",
            "member_added",
            "user",
            ALICE,
            "alice@acme.test",
            "success",
            "scim.group.member_added",
            &event_id(4)
        ]
    );
    let day2 = run(
        &engine,
        "who_did_what",
        &[
            ("tenant_id", "acme"),
            ("from", "2026-11-19 09:00:00"),
            ("to", "2026-11-19 10:00:00"),
        ],
    )
    .await;
    assert_eq!(
        col(&day2, 10),
        ids(&[12, 13]),
        "from inclusive, to exclusive"
    );

    let rows = run(
        &engine,
        "user_history",
        &[("tenant_id", "acme"), ("user_id", BOB)],
    )
    .await;
    assert_eq!(
        col(&rows, 1),
        [
            "scim.user.created",
            "scim.group.member_added",
            "app.user.role_changed",
            "scim.group.member_removed",
            "scim.user.deactivated"
        ]
    );
    assert_eq!(col(&rows, 5), ["NULL", ADMINS, "NULL", ADMINS, "NULL"]);

    let rows = run(
        &engine,
        "group_membership_changes",
        &[
            ("tenant_id", "acme"),
            ("group_id", ADMINS),
            ("from", "2026-11-18"),
            ("to", "2026-11-21"),
        ],
    )
    .await;
    assert_eq!(
        rows.iter()
            .map(|r| (r[1].as_str(), r[2].as_str()))
            .collect::<Vec<_>>(),
        [
            ("member_added", ALICE),
            ("member_added", BOB),
            ("member_removed", BOB),
            ("member_added", CAROL)
        ]
    );

    let as_of = |t: &'static str| [("tenant_id", "acme"), ("group_id", ADMINS), ("as_of", t)];
    let members = |rows: Vec<Vec<String>>| col(&rows, 0);
    for (at, expected) in [
        ("2026-11-18 09:03:30", &[ALICE][..]),
        ("2026-11-18 23:59:59", &[ALICE, BOB]),
        ("2026-11-19 12:00:00", &[ALICE]),
        ("2026-11-20 08:30:00", &[ALICE, CAROL]),
    ] {
        assert_eq!(
            members(run(&engine, "group_members_as_of", &as_of(at)).await),
            expected,
            "members as of {at}"
        );
    }
    assert_eq!(
        members(run(&engine, "group_members_as_of", &as_of("2026-11-21")).await),
        [CAROL],
        "alice's deletion ended her membership"
    );

    let rows = run(
        &engine,
        "deprovisioning_timeliness",
        &[
            ("tenant_id", "acme"),
            ("from", "2026-11-18"),
            ("to", "2026-11-21"),
            ("sla_seconds", "900"),
        ],
    )
    .await;
    assert_eq!(
        rows,
        [
            vec![
                BOB.to_owned(),
                "bob@acme.test".into(),
                "2026-11-19T09:00:00Z".into(),
                "2026-11-19T09:30:00Z".into(),
                "1800".into(),
                "violated".into()
            ],
            vec![
                ALICE.to_owned(),
                "alice@acme.test".into(),
                "2026-11-20T09:00:00Z".into(),
                "2026-11-19T10:00:00Z".into(),
                "0".into(),
                "met".into()
            ],
        ]
    );
    let lenient = run(
        &engine,
        "deprovisioning_timeliness",
        &[
            ("tenant_id", "acme"),
            ("from", "2026-11-18"),
            ("to", "2026-11-21"),
            ("sla_seconds", "3600"),
        ],
    )
    .await;
    assert_eq!(lenient[0][5], "met");

    let rows = run(&engine, "activity_after_deactivation", &acme_all).await;
    assert_eq!(col(&rows, 7), ids(&[13]));
    assert_eq!(rows[0][1], BOB);
    assert!(
        run(
            &engine,
            "activity_after_deactivation",
            &[
                ("tenant_id", "globex"),
                ("from", "2026-11-18"),
                ("to", "2026-11-21")
            ]
        )
        .await
        .is_empty()
    );

    let rows = run(&engine, "privileged_actions", &acme_all).await;
    assert_eq!(col(&rows, 10), ids(&[4, 5, 8, 11, 12, 16, 17]));

    let rows = run(&engine, "failed_actions", &acme_all).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r[1].as_str(), r[9].clone()))
            .collect::<Vec<_>>(),
        [("denied", event_id(7)), ("failure", event_id(14))]
    );

    let rows = run(
        &engine,
        "event_volume",
        &[("from_dt", "2026-11-18"), ("to_dt", "2026-11-20")],
    )
    .await;
    let volume: Vec<(String, String, String, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    let v = |t: &str, d: &str, e: &str, n: &str| {
        (t.to_owned(), d.to_owned(), e.to_owned(), n.to_owned())
    };
    assert_eq!(
        volume,
        [
            v("acme", "2026-11-18", "app.document.changed", "2"),
            v("acme", "2026-11-18", "app.user.role_changed", "1"),
            v("acme", "2026-11-18", "scim.group.created", "1"),
            v("acme", "2026-11-18", "scim.group.member_added", "2"),
            v("acme", "2026-11-18", "scim.user.created", "2"),
            v("acme", "2026-11-19", "app.document.changed", "2"),
            v("acme", "2026-11-19", "scim.group.member_removed", "1"),
            v("acme", "2026-11-19", "scim.user.deactivated", "1"),
            v("acme", "2026-11-20", "scim.group.member_added", "1"),
            v("acme", "2026-11-20", "scim.user.created", "1"),
            v("acme", "2026-11-20", "scim.user.deleted", "1"),
            v("globex", "2026-11-18", "app.document.changed", "1"),
            v("globex", "2026-11-18", "scim.user.created", "1"),
        ],
        "the stray copies are counted once"
    );

    let rows = run(
        &engine,
        "duplicates_and_conflicts",
        &[("from_dt", "2026-11-18"), ("to_dt", "2026-11-20")],
    )
    .await;
    assert_eq!(
        rows,
        [
            vec![
                "acme".to_owned(),
                event_id(1),
                "2".into(),
                "1".into(),
                "duplicate".into()
            ],
            vec![
                "acme".to_owned(),
                event_id(2),
                "2".into(),
                "2".into(),
                "conflict".into()
            ],
        ]
    );
}

/// An object store that records which objects were read.
#[derive(Debug)]
struct Counting {
    inner: object_store::local::LocalFileSystem,
    reads: Mutex<Vec<String>>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for Counting {
    async fn put_opts(
        &self,
        l: &object_store::path::Path,
        p: object_store::PutPayload,
        o: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &object_store::path::Path,
        o: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(
        &self,
        l: &object_store::path::Path,
        o: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.reads.lock().unwrap().push(l.to_string());
        self.inner.get_opts(l, o).await
    }
    async fn get_ranges(
        &self,
        l: &object_store::path::Path,
        r: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.reads.lock().unwrap().push(l.to_string());
        self.inner.get_ranges(l, r).await
    }
    fn delete_stream(
        &self,
        s: futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(s)
    }
    fn list(
        &self,
        p: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(p)
    }
    fn list_with_offset(
        &self,
        p: Option<&object_store::path::Path>,
        o: &object_store::path::Path,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list_with_offset(p, o)
    }
    async fn list_with_delimiter(
        &self,
        p: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(p).await
    }
    async fn copy_opts(
        &self,
        f: &object_store::path::Path,
        t: &object_store::path::Path,
        o: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(f, t, o).await
    }
}

#[tokio::test]
async fn a_one_tenant_one_day_query_reads_only_that_partition() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    let store = Arc::new(Counting {
        inner: object_store::local::LocalFileSystem::new(),
        reads: Mutex::new(Vec::new()),
    });
    let engine = Engine::open_with_store(dir.path(), Some(store.clone()))
        .await
        .unwrap();
    let rows = run(
        &engine,
        "who_did_what",
        &[
            ("tenant_id", "acme"),
            ("from", "2026-11-19"),
            ("to", "2026-11-19 23:59:59"),
        ],
    )
    .await;
    assert_eq!(col(&rows, 10), ids(&[11, 12, 13, 14]));
    let mut read: Vec<String> = store.reads.lock().unwrap().clone();
    read.sort();
    read.dedup();
    assert!(!read.is_empty());
    for path in &read {
        assert!(
            path.contains("/audit/tenant_id=acme/dt=2026-11-19/"),
            "read outside the partition: {path} (all reads: {read:?})"
        );
    }
}
