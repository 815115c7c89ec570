//! Conformance suites: the same assertions against every adapter of a port.

use std::time::Duration;

use auditlog::{BlobError, BlobStore, ClaimContext, ClaimOutcome, ClaimRequest, DedupeStore};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use envelope::{EventId, TenantId};

pub async fn blob_store(store: &dyn BlobStore) {
    store
        .put("a/b/1.parquet", Bytes::from_static(b"one"))
        .await
        .unwrap();
    store
        .put("a/b/2.parquet", Bytes::from_static(b"two"))
        .await
        .unwrap();
    store
        .put("a/c/1.parquet", Bytes::from_static(b"three"))
        .await
        .unwrap();
    store
        .put("ab/1.parquet", Bytes::from_static(b"four"))
        .await
        .unwrap();
    assert_eq!(
        store.get("a/b/1.parquet").await.unwrap(),
        Bytes::from_static(b"one")
    );

    // overwrite replaces the whole object
    store
        .put("a/b/1.parquet", Bytes::from_static(b"uno!"))
        .await
        .unwrap();
    assert_eq!(
        store.get("a/b/1.parquet").await.unwrap(),
        Bytes::from_static(b"uno!")
    );

    let keys =
        |v: Vec<auditlog::ObjectInfo>| v.into_iter().map(|o| (o.key, o.size)).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list("a/b/").await.unwrap()),
        vec![
            ("a/b/1.parquet".to_owned(), 4),
            ("a/b/2.parquet".to_owned(), 3)
        ]
    );
    assert_eq!(
        store.list("a/").await.unwrap().len(),
        3,
        "prefix a/ must not match ab/"
    );
    assert_eq!(
        store.list("a").await.unwrap().len(),
        4,
        "a bare prefix matches ab/ too"
    );
    assert!(store.list("zzz/").await.unwrap().is_empty());
    // the first keys, and the "directories" below a prefix
    assert_eq!(
        keys(store.list_first("a/", 2).await.unwrap()),
        keys(store.list("a/").await.unwrap())[..2].to_vec()
    );
    assert_eq!(store.list_first("a/", 100).await.unwrap().len(), 3);
    assert!(
        store
            .list("a/")
            .await
            .unwrap()
            .iter()
            .all(|o| o.modified.is_some()),
        "listings carry last-modified times"
    );
    assert_eq!(
        store.list_prefixes("a/").await.unwrap(),
        vec!["a/b/".to_owned(), "a/c/".to_owned()]
    );
    assert!(store.list_prefixes("zzz/").await.unwrap().is_empty());

    assert!(matches!(
        store.get("a/b/missing.parquet").await,
        Err(BlobError::NotFound(_))
    ));
    store.delete("a/b/2.parquet").await.unwrap();
    store.delete("a/b/2.parquet").await.unwrap(); // idempotent
    assert!(matches!(
        store.get("a/b/2.parquet").await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(store.list("a/b/").await.unwrap().len(), 1);

    // large objects round-trip byte for byte
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store
        .put("big/x.bin", Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.get("big/x.bin").await.unwrap().as_ref(),
        big.as_slice()
    );
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

fn ctx(batch: &str, now: DateTime<Utc>) -> ClaimContext {
    ClaimContext {
        unit_id: batch.to_owned(),
        now,
        lease: Duration::from_secs(600),
        retention: Duration::from_secs(30 * 86_400),
    }
}

fn req(tenant: &str, n: u32, hash: &str) -> ClaimRequest {
    ClaimRequest {
        tenant_id: TenantId::parse(tenant).unwrap(),
        event_id: EventId::parse(&format!("0192f4a0-7b3c-7d4e-8f00-{n:012}")).unwrap(),
        payload_sha256: hash.to_owned(),
    }
}

/// `tag` keeps keys of different runs against one shared store apart.
pub async fn dedupe_store(store: &dyn DedupeStore, tag: &str) {
    let t = |s: &str| format!("{tag}-{s}");
    let a = ctx(&t("batch-a"), t0());
    let b = ctx(&t("batch-b"), t0());
    let r1 = req(&t("acme"), 1, "h1");
    let r2 = req(&t("acme"), 2, "h2");
    let other_tenant_same_id = req(&t("other"), 1, "hX");

    assert_eq!(
        store
            .claim(&a, &[r1.clone(), r2.clone(), other_tenant_same_id.clone()])
            .await
            .unwrap(),
        vec![
            ClaimOutcome::Claimed,
            ClaimOutcome::Claimed,
            ClaimOutcome::Claimed
        ],
        "the same event id under two tenants is two events"
    );
    assert_eq!(
        store.claim(&a, std::slice::from_ref(&r1)).await.unwrap(),
        vec![ClaimOutcome::Claimed],
        "own claim"
    );
    assert_eq!(
        store.claim(&b, std::slice::from_ref(&r1)).await.unwrap(),
        vec![ClaimOutcome::InProgress]
    );

    store.complete(&a).await.unwrap();
    assert_eq!(
        store
            .claim(&b, &[r1.clone(), req(&t("acme"), 2, "different")])
            .await
            .unwrap(),
        vec![
            ClaimOutcome::Completed {
                payload_sha256: "h1".into()
            },
            ClaimOutcome::Completed {
                payload_sha256: "h2".into()
            },
        ],
        "a completed claim reports the original hash, whatever the new one"
    );
    // a week later, still a duplicate
    let later = ctx(&t("batch-c"), t0() + chrono::Duration::days(7));
    assert_eq!(
        store
            .claim(&later, std::slice::from_ref(&r1))
            .await
            .unwrap(),
        vec![ClaimOutcome::Completed {
            payload_sha256: "h1".into()
        }]
    );
    // past retention, the event is new again (compaction still removes the copy)
    let much_later = ctx(&t("batch-d"), t0() + chrono::Duration::days(31));
    assert_eq!(
        store
            .claim(&much_later, std::slice::from_ref(&r1))
            .await
            .unwrap(),
        vec![ClaimOutcome::Claimed]
    );

    // an abandoned claim blocks others until its lease runs out, then is taken over
    let r3 = req(&t("acme"), 3, "h3");
    let dead = ctx(&t("batch-dead"), t0());
    assert_eq!(
        store.claim(&dead, std::slice::from_ref(&r3)).await.unwrap(),
        vec![ClaimOutcome::Claimed]
    );
    let soon = ctx(&t("batch-e"), t0() + chrono::Duration::minutes(5));
    assert_eq!(
        store.claim(&soon, std::slice::from_ref(&r3)).await.unwrap(),
        vec![ClaimOutcome::InProgress]
    );
    let after_lease = ctx(&t("batch-f"), t0() + chrono::Duration::minutes(11));
    assert_eq!(
        store
            .claim(&after_lease, std::slice::from_ref(&r3))
            .await
            .unwrap(),
        vec![ClaimOutcome::Claimed]
    );
    // and the dead batch completing late does not steal it back
    store.complete(&dead).await.unwrap();
    let g = ctx(&t("batch-g"), t0() + chrono::Duration::minutes(12));
    assert_eq!(
        store.claim(&g, std::slice::from_ref(&r3)).await.unwrap(),
        vec![ClaimOutcome::InProgress]
    );

    // release lets another batch claim at once, and only releases our own claims
    let r4 = req(&t("acme"), 4, "h4");
    let h = ctx(&t("batch-h"), t0());
    let i = ctx(&t("batch-i"), t0());
    store.claim(&h, std::slice::from_ref(&r4)).await.unwrap();
    store.release(&i, std::slice::from_ref(&r4)).await.unwrap();
    assert_eq!(
        store.claim(&i, std::slice::from_ref(&r4)).await.unwrap(),
        vec![ClaimOutcome::InProgress]
    );
    store.release(&h, std::slice::from_ref(&r4)).await.unwrap();
    assert_eq!(
        store.claim(&i, std::slice::from_ref(&r4)).await.unwrap(),
        vec![ClaimOutcome::Claimed]
    );

    // many keys at once keep their order
    let many: Vec<ClaimRequest> = (100..300).map(|n| req(&t("bulk"), n, "h")).collect();
    let j = ctx(&t("batch-j"), t0());
    let out = store.claim(&j, &many).await.unwrap();
    assert_eq!(out.len(), 200);
    assert!(out.iter().all(|o| *o == ClaimOutcome::Claimed));
    store.complete(&j).await.unwrap();
    let mut mixed = vec![
        req(&t("bulk"), 150, "h"),
        req(&t("bulk"), 999, "h"),
        req(&t("bulk"), 299, "h"),
    ];
    let k = ctx(&t("batch-k"), t0());
    let out = store.claim(&k, &mixed).await.unwrap();
    assert_eq!(
        out,
        vec![
            ClaimOutcome::Completed {
                payload_sha256: "h".into()
            },
            ClaimOutcome::Claimed,
            ClaimOutcome::Completed {
                payload_sha256: "h".into()
            },
        ]
    );
    mixed.clear();
}

/// Publishes through `bus` and checks what the rule target received: one delivery per
/// accepted entry, wrapped the EventBridge way, the detail unchanged.
pub async fn event_bus<F, Fut>(bus: &dyn envelope::EventBus, delivered: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    use envelope::{
        Actor, ActorType, Detail, Metadata, OutgoingEvent, Publisher, PublisherConfig,
        SchemaRegistry,
    };
    let events: Vec<OutgoingEvent> = (0..12)
        .map(|n| OutgoingEvent {
            source: "auditlog.conformance".into(),
            resources: vec![format!("arn:aws:auditlog:::doc/{n}")],
            detail: Detail {
                metadata: Metadata {
                    event_id: EventId::new_v7(),
                    tenant_id: TenantId::parse("acme").unwrap(),
                    event_type: "app.document.viewed".into(),
                    schema_version: 1,
                    occurred_at: t0(),
                    producer: "conformance".into(),
                    actor: Actor {
                        kind: ActorType::Service,
                        id: "svc".into(),
                        name: None,
                    },
                    correlation_id: None,
                    request_id: None,
                    source_ip: None,
                    user_agent: None,
                },
                payload: serde_json::json!({"action": "view", "n": n}),
            },
        })
        .collect();
    let publisher = Publisher::new(
        BusRef(bus),
        SchemaRegistry::builtin().unwrap(),
        PublisherConfig::default(),
    );
    let report = publisher.publish(&events).await.unwrap();
    assert!(report.all_accepted());
    assert_eq!(report.requests, 2);
    let mut bodies = delivered().await;
    assert_eq!(bodies.len(), 12);
    bodies.sort();
    let registry = SchemaRegistry::builtin().unwrap();
    let mut bus_ids = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for b in &bodies {
        let v = envelope::decode_bus_event(b, &registry, 1 << 21).unwrap();
        assert_eq!(v.bus.source, "auditlog.conformance");
        assert_eq!(v.bus.detail_type, "app.document.viewed");
        let original = events
            .iter()
            .find(|e| e.detail.metadata.event_id == v.metadata.event_id)
            .unwrap();
        assert_eq!(v.payload.to_value(), original.detail.payload);
        assert_eq!(v.metadata, original.detail.metadata);
        bus_ids.insert(v.bus.id.clone());
        seen.insert(v.metadata.event_id.clone());
    }
    assert_eq!(bus_ids.len(), 12, "each delivery has its own bus id");
    assert_eq!(seen.len(), 12);
    let accepted: std::collections::BTreeSet<String> =
        report.accepted.iter().map(|(_, id)| id.clone()).collect();
    let delivered_ids: std::collections::BTreeSet<String> = bus_ids.into_iter().collect();
    assert_eq!(
        accepted, delivered_ids,
        "the id PutEvents returned is the id delivered"
    );
}

struct BusRef<'a>(&'a dyn envelope::EventBus);

#[async_trait::async_trait]
impl envelope::EventBus for BusRef<'_> {
    async fn put_events(
        &self,
        e: &[envelope::PutEventsEntry],
    ) -> Result<Vec<envelope::EntryOutcome>, envelope::BusError> {
        self.0.put_events(e).await
    }
}

/// The `ScimStore` contract. `tag` keeps tenants of different runs apart.
pub async fn scim_store(store: &dyn scim::ScimStore, tag: &str) {
    use scim::{OutboxEntry, Resource, ResourceKind, StoreError, UniqueAttr};
    use serde_json::json;

    let acme = TenantId::parse(&format!("{tag}-acme")).unwrap();
    let globex = TenantId::parse(&format!("{tag}-globex")).unwrap();
    let now = t0();
    let resource = |kind, id: &str, body: serde_json::Value| Resource {
        id: id.to_owned(),
        kind,
        version: 1,
        created: now,
        last_modified: now,
        body,
    };
    let event = |tenant: &TenantId, t: &str, payload: serde_json::Value| OutboxEntry {
        event_id: EventId::new_v7(),
        tenant_id: tenant.clone(),
        event_type: t.to_owned(),
        occurred_at: now,
        actor: envelope::Actor {
            kind: envelope::ActorType::Idp,
            id: "okta".into(),
            name: None,
        },
        payload,
    };
    // drain whatever earlier runs left, so the outbox assertions below are ours
    ack_pending(store, 100_000).await;

    let ada = resource(
        ResourceKind::User,
        "u1",
        json!({"userName": "Ada@Example.com", "active": true}),
    );
    store
        .create(
            &acme,
            &ada,
            &[event(&acme, "scim.user.created", json!({"id": "u1"}))],
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&acme, ResourceKind::User, "u1").await.unwrap(),
        ada
    );

    // userName is unique per tenant, case-insensitively, and found by index
    let dup = resource(
        ResourceKind::User,
        "u2",
        json!({"userName": "ada@EXAMPLE.com"}),
    );
    assert!(matches!(
        store
            .create(&acme, &dup, &[event(&acme, "nothing", json!({}))])
            .await,
        Err(StoreError::Uniqueness {
            attr: "userName",
            ..
        })
    ));
    assert_eq!(
        store
            .find_unique(&acme, UniqueAttr::UserName, "ADA@example.COM")
            .await
            .unwrap()
            .map(|r| r.id),
        Some("u1".into())
    );

    // tenants are isolated: same ids and names live side by side, and never cross
    store.create(&globex, &ada, &[]).await.unwrap();
    assert!(
        store
            .find_unique(&globex, UniqueAttr::UserName, "ada@example.com")
            .await
            .unwrap()
            .is_some()
    );
    store
        .delete(&globex, ResourceKind::User, "u1", None, &[])
        .await
        .unwrap();
    assert_eq!(
        store.get(&acme, ResourceKind::User, "u1").await.unwrap().id,
        "u1",
        "globex's delete left acme alone"
    );
    assert!(matches!(
        store.get(&globex, ResourceKind::User, "u1").await,
        Err(StoreError::NotFound)
    ));

    // batched reads: only what exists, of that kind, in that tenant; more than one
    // batch (DynamoDB reads 100 keys per request), duplicates asked once
    let mut asked: Vec<String> = (0..150).map(|i| format!("nobody-{i}")).collect();
    asked.extend(["u1".to_owned(), "u1".to_owned()]);
    let found = store
        .get_many(&acme, ResourceKind::User, &asked)
        .await
        .unwrap();
    assert_eq!(found, vec![ada.clone()]);
    assert!(
        store
            .get_many(&acme, ResourceKind::Group, &asked)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .get_many(&globex, ResourceKind::User, &asked)
            .await
            .unwrap()
            .is_empty()
    );

    // optimistic versions
    let mut v2 = ada.clone();
    v2.version = 2;
    v2.body = json!({"userName": "ada@example.com", "active": false});
    store
        .update(
            &acme,
            &v2,
            1,
            &[event(&acme, "scim.user.deactivated", json!({"id": "u1"}))],
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .update(&acme, &v2, 1, &[event(&acme, "nothing", json!({}))])
            .await,
        Err(StoreError::VersionMismatch { expected: 1 })
    ));
    let mut ghost = v2.clone();
    ghost.id = "nope".into();
    assert!(matches!(
        store.update(&acme, &ghost, 1, &[]).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get(&acme, ResourceKind::User, "u1")
            .await
            .unwrap()
            .body["active"],
        false
    );

    // groups and memberships: idempotent, O(named), with one event per actual change
    let admins = resource(ResourceKind::Group, "g1", json!({"displayName": "Admins"}));
    store.create(&acme, &admins, &[]).await.unwrap();
    let members: Vec<String> = (0..250).map(|i| format!("m{i:04}")).collect();
    let ev = |m: &str| event(&acme, "scim.group.member_added", json!({"member": m}));
    let added = store.add_members(&acme, "g1", &members, &ev).await.unwrap();
    assert_eq!(added.len(), 250);
    let again = store
        .add_members(&acme, "g1", &["m0000".into(), "u1".into()], &ev)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec!["u1".to_string()],
        "adding an existing member is a no-op"
    );
    let mut page = store.members(&acme, "g1", None, 100).await.unwrap();
    assert_eq!(page.len(), 100);
    let mut all = page.clone();
    while let Some(last) = page.last().cloned() {
        page = store.members(&acme, "g1", Some(&last), 100).await.unwrap();
        all.extend(page.clone());
    }
    assert_eq!(all.len(), 251, "paged listing sees every member once");
    assert_eq!(
        store.groups_of(&acme, "u1").await.unwrap(),
        vec!["g1".to_string()]
    );
    let rm = |m: &str| event(&acme, "scim.group.member_removed", json!({"member": m}));
    let removed = store
        .remove_members(&acme, "g1", &["m0001".into(), "not-a-member".into()], &rm)
        .await
        .unwrap();
    assert_eq!(removed, vec!["m0001".to_string()]);
    assert!(matches!(
        store
            .add_members(&acme, "no-group", &["x".into()], &ev)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        matches!(
            store.add_members(&globex, "g1", &["x".into()], &ev).await,
            Err(StoreError::NotFound)
        ),
        "another tenant's group"
    );
    assert!(
        store
            .members(&globex, "g1", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // listing resources pages by id
    let users = store
        .list(&acme, ResourceKind::User, None, 10)
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["u1"]
    );

    // deleting a user removes their memberships (reverse index); a group, its members
    store
        .delete(
            &acme,
            ResourceKind::User,
            "u1",
            Some(2),
            &[event(&acme, "scim.user.deleted", json!({"id": "u1"}))],
        )
        .await
        .unwrap();
    assert!(store.groups_of(&acme, "u1").await.unwrap().is_empty());
    assert!(matches!(
        store
            .delete(&acme, ResourceKind::Group, "g1", Some(9), &[])
            .await,
        Err(StoreError::VersionMismatch { .. })
    ));
    store
        .delete(&acme, ResourceKind::Group, "g1", None, &[])
        .await
        .unwrap();
    assert!(
        store
            .members(&acme, "g1", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.groups_of(&acme, "m0002").await.unwrap().is_empty());

    // the outbox holds exactly the committed changes' events, in order, until acked
    let pending = store.outbox_pending(1000).await.unwrap();
    let types: Vec<&str> = pending
        .iter()
        .map(|p| p.entry.event_type.as_str())
        .collect();
    assert_eq!(types.first(), Some(&"scim.user.created"));
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "scim.group.member_added")
            .count(),
        251
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "scim.group.member_removed")
            .count(),
        1
    );
    assert_eq!(types.last(), Some(&"scim.user.deleted"));
    assert!(!types.contains(&"nothing"), "failed writes added no events");
    assert_eq!(pending.len(), 1 + 1 + 251 + 1 + 1);
    let seqs: Vec<String> = pending.iter().map(|p| p.receipt.clone()).collect();
    let ids: std::collections::BTreeSet<&EventId> =
        pending.iter().map(|p| &p.entry.event_id).collect();
    assert_eq!(ids.len(), pending.len(), "each event once");
    store.outbox_ack(&seqs[..10]).await.unwrap();
    assert_eq!(
        store.outbox_pending(1000).await.unwrap().len(),
        pending.len() - 10
    );
    store.outbox_ack(&seqs).await.unwrap();
    assert!(store.outbox_pending(1000).await.unwrap().is_empty());

    // a deleted group leaves its parents too, not only its own members
    for id in ["parent", "child"] {
        let g = resource(ResourceKind::Group, id, json!({"displayName": id}));
        store.create(&acme, &g, &[]).await.unwrap();
    }
    let added = store
        .add_members(&acme, "parent", &["child".into(), "u1".into()], &ev)
        .await
        .unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(store.groups_of(&acme, "child").await.unwrap(), ["parent"]);
    store
        .delete(&acme, ResourceKind::Group, "child", None, &[])
        .await
        .unwrap();
    assert_eq!(
        store.members(&acme, "parent", None, 10).await.unwrap(),
        ["u1"],
        "the deleted group is no member of its parent"
    );
    assert!(store.groups_of(&acme, "child").await.unwrap().is_empty());
    ack_pending(store, 1000).await;
}

/// Acknowledges up to `limit` pending outbox entries, whoever wrote them.
async fn ack_pending(store: &dyn scim::ScimStore, limit: usize) {
    let receipts: Vec<String> = store
        .outbox_pending(limit)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.receipt)
        .collect();
    store.outbox_ack(&receipts).await.unwrap();
}

/// Concurrent membership PATCHes on one group (Okta splits large changes this way):
/// every one succeeds and the result is exactly the union.
pub async fn scim_concurrent_membership(store: &dyn scim::ScimStore, tag: &str) {
    use scim::{OutboxEntry, Resource, ResourceKind};
    use serde_json::json;
    let tenant = TenantId::parse(&format!("{tag}-conc")).unwrap();
    let group = Resource {
        id: "big".into(),
        kind: ResourceKind::Group,
        version: 1,
        created: t0(),
        last_modified: t0(),
        body: json!({"displayName": format!("{tag} everyone")}),
    };
    store.create(&tenant, &group, &[]).await.unwrap();
    let ev = |m: &str| OutboxEntry {
        event_id: EventId::new_v7(),
        tenant_id: tenant.clone(),
        event_type: "scim.group.member_added".into(),
        occurred_at: t0(),
        actor: envelope::Actor {
            kind: envelope::ActorType::Idp,
            id: "okta".into(),
            name: None,
        },
        payload: json!({"member": m}),
    };
    let sets: Vec<Vec<String>> = (0..8)
        .map(|p| (0..25).map(|i| format!("p{p}-u{i:03}")).collect())
        .collect();
    let results = futures::future::join_all(
        sets.iter()
            .map(|s| store.add_members(&tenant, "big", s, &ev)),
    )
    .await;
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap().len(),
            25,
            "no PATCH is rejected for being concurrent"
        );
    }
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .members(&tenant, "big", after.as_deref(), 64)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        all.extend(page);
    }
    let mut expected: Vec<String> = sets.into_iter().flatten().collect();
    expected.sort();
    assert_eq!(all, expected, "the final membership is exactly the union");
    let pending = store.outbox_pending(100_000).await.unwrap();
    let mine = pending
        .iter()
        .filter(|p| p.entry.tenant_id == tenant)
        .count();
    assert_eq!(mine, 200, "one event per membership change");
}

/// `TenantDirectory`: credentials found by token hash only, listed and revoked per tenant
/// (never another tenant's), expiry and scopes kept.
pub async fn tenant_directory(d: &dyn scim::TenantDirectory, tag: &str) {
    use scim::tenants::{new_token, token_hash};
    use scim::{Credential, Scope};
    let acme = TenantId::parse(&format!("acme-{tag}")).unwrap();
    let globex = TenantId::parse(&format!("globex-{tag}")).unwrap();
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let (old, new, other) = (new_token(), new_token(), new_token());
    assert_eq!(d.credential(&token_hash(&old)).await.unwrap(), None);

    let c_old = Credential::new(&old, acme.clone(), "entra", now);
    let mut c_new = Credential::new(
        &new,
        acme.clone(),
        "entra",
        now + chrono::Duration::seconds(1),
    );
    c_new.expires_at = Some(now + chrono::Duration::days(90));
    let c_other = Credential::new(&other, globex.clone(), "okta", now);
    for c in [&c_old, &c_new, &c_other] {
        d.put_credential(c).await.unwrap();
    }
    assert_eq!(
        d.credential(&token_hash(&old)).await.unwrap(),
        Some(c_old.clone())
    );
    assert_eq!(
        d.credential(&token_hash(&new)).await.unwrap(),
        Some(c_new.clone()),
        "expiry kept"
    );
    assert_eq!(
        d.credentials(&acme).await.unwrap(),
        vec![c_old.clone(), c_new.clone()]
    );

    // rotation: both work until the old one is revoked; a tenant cannot revoke another's
    assert!(
        !d.revoke_credential(&acme, &token_hash(&other))
            .await
            .unwrap()
    );
    assert!(d.credential(&token_hash(&other)).await.unwrap().is_some());
    assert!(d.revoke_credential(&acme, &token_hash(&old)).await.unwrap());
    assert!(
        !d.revoke_credential(&acme, &token_hash(&old)).await.unwrap(),
        "already gone"
    );
    assert_eq!(d.credential(&token_hash(&old)).await.unwrap(), None);
    assert_eq!(d.credentials(&acme).await.unwrap(), vec![c_new.clone()]);
    assert_eq!(d.credentials(&globex).await.unwrap(), vec![c_other]);

    // an audit API token beside the SCIM ones: its scopes come back as written
    let siem = tenants::new_token("audit");
    let c_siem = Credential::with_scopes(
        &siem,
        acme.clone(),
        "splunk",
        vec![Scope::AuditExport, Scope::AuditRead],
        now + chrono::Duration::seconds(2),
    );
    d.put_credential(&c_siem).await.unwrap();
    let back = d.credential(&token_hash(&siem)).await.unwrap().unwrap();
    assert_eq!(back, c_siem);
    assert!(back.allows(Scope::AuditRead) && !back.allows(Scope::Scim));
    assert_eq!(d.credentials(&acme).await.unwrap(), vec![c_new, c_siem]);
}

/// `PolicyStore`: policies per tenant, with the default when unset.
pub async fn policy_store(d: &dyn scim::PolicyStore, tag: &str) {
    use scim::{CompatPolicy, UnknownMembers};
    let acme = TenantId::parse(&format!("acme-{tag}")).unwrap();
    let globex = TenantId::parse(&format!("globex-{tag}")).unwrap();
    assert_eq!(d.policy(&acme).await.unwrap(), CompatPolicy::default());
    let strict = CompatPolicy {
        unknown_members: UnknownMembers::Skip,
        ..CompatPolicy::strict()
    };
    d.put_policy(&acme, &strict).await.unwrap();
    assert_eq!(d.policy(&acme).await.unwrap(), strict);
    assert_eq!(
        d.policy(&globex).await.unwrap(),
        CompatPolicy::default(),
        "per tenant"
    );
}

/// `RetentionSettings`: unset until set, per tenant, replaced by a later setting.
pub async fn retention_settings(d: &dyn tenants::RetentionSettings, tag: &str) {
    use tenants::Retention;
    let acme = TenantId::parse(&format!("acme-{tag}")).unwrap();
    let globex = TenantId::parse(&format!("globex-{tag}")).unwrap();
    assert_eq!(d.retention(&acme).await.unwrap(), None);
    d.put_retention(&acme, Retention::days(90).unwrap())
        .await
        .unwrap();
    d.put_retention(&acme, Retention::days(3653).unwrap())
        .await
        .unwrap();
    assert_eq!(
        d.retention(&acme).await.unwrap(),
        Some(Retention::days(3653).unwrap())
    );
    assert_eq!(d.retention(&globex).await.unwrap(), None, "per tenant");
}

/// `LeafIndex`: per tenant, found again as recorded, replaced by a later record, and
/// more keys at once than one DynamoDB batch takes.
pub async fn leaf_index(index: &dyn transparency::integrate::LeafIndex, tag: &str) {
    use transparency::integrate::Placed;
    let acme = TenantId::parse(&format!("acme-{tag}")).unwrap();
    let globex = TenantId::parse(&format!("globex-{tag}")).unwrap();
    let id =
        |i: u64| envelope::EventId::parse(&format!("01890a5d-ac96-774b-bcce-{i:012x}")).unwrap();
    let placed = |i: u64| Placed {
        index: i,
        payload_sha256: [(i % 251) as u8; 32],
    };
    let events: Vec<_> = (0..260u64).map(|i| (id(i), placed(i))).collect();
    index.record(&acme, &events).await.unwrap();
    let ids: Vec<_> = (0..300u64).map(id).collect();
    let got = index.lookup(&acme, &ids).await.unwrap();
    assert_eq!(got.len(), 260, "{tag}: the 40 never recorded are absent");
    for i in 0..260u64 {
        assert_eq!(got[&id(i)], placed(i), "{tag}: {i}");
    }
    assert!(
        index.lookup(&globex, &ids).await.unwrap().is_empty(),
        "{tag}: another tenant's events are not this one's"
    );
    // a record replaces a reservation a crashed run left
    index
        .record(&acme, &[(id(7), placed(9_000_000_000))])
        .await
        .unwrap();
    let again = index.lookup(&acme, &[id(7)]).await.unwrap();
    assert_eq!(again[&id(7)].index, 9_000_000_000, "{tag}");
    assert!(index.lookup(&acme, &[]).await.unwrap().is_empty());
}
