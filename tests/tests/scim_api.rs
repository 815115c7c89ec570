//! The SCIM HTTP API over the SQLite store, driven with `tower::ServiceExt::oneshot`:
//! no server, the same router the Lambda and `auditlog serve` run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::scim_http::{Api, Reply, assert_scim_error, user};
use axum::http::{StatusCode, header};
use scim::{RateLimit, ScimStore};
use serde_json::json;

use auditlog_tests::scim_http::{ACME, GLOBEX};

async fn api() -> Api {
    Api::two_tenants(RateLimit::default()).await
}

#[tokio::test]
async fn auth_and_unknown_routes_answer_scim_errors() {
    let api = api().await;
    assert_scim_error(&api.call("GET", "/Users", None, None, &[]).await, 401, None);
    assert_scim_error(
        &api.call("GET", "/Users", Some("wrong"), None, &[]).await,
        401,
        None,
    );
    // authentication comes first everywhere: nothing about ids or documents leaks to a
    // caller without a token, not even whether one exists
    for path in [
        "/Users/some-id",
        "/Groups/some-id/members",
        "/Schemas/urn:nope",
        "/ResourceTypes/User",
        "/ServiceProviderConfig",
    ] {
        assert_scim_error(&api.call("GET", path, None, None, &[]).await, 401, None);
    }
    assert_scim_error(
        &api.call("GET", "/Nope", Some(ACME), None, &[]).await,
        404,
        None,
    );
    assert_scim_error(
        &api.call("GET", "/Users/missing", Some(ACME), None, &[])
            .await,
        404,
        None,
    );
    assert_scim_error(
        &api.post("/ServiceProviderConfig", ACME, json!({})).await,
        405,
        None,
    );
    assert_scim_error(
        &api.call("GET", "/Me", Some(ACME), None, &[]).await,
        501,
        None,
    );
    // RFC 7644 §4: one resource type or schema by its id
    let rt = api
        .call("GET", "/ResourceTypes/Group", Some(ACME), None, &[])
        .await;
    assert_eq!(rt.status, StatusCode::OK);
    assert_eq!(rt.body["endpoint"], "/Groups");
    assert_scim_error(
        &api.call("GET", "/ResourceTypes/Device", Some(ACME), None, &[])
            .await,
        404,
        None,
    );
    // what axum itself refuses leaves as SCIM errors too: a method a route lacks, a
    // body over the limit, a query string that does not parse
    assert_scim_error(
        &api.call("GET", "/Users/.search", Some(ACME), None, &[])
            .await,
        405,
        None,
    );
    let mut big = user("big@acme.test");
    big["displayName"] = json!("x".repeat(3 << 20));
    assert_scim_error(&api.post("/Users", ACME, big).await, 413, None);
    let spc = api
        .call("GET", "/ServiceProviderConfig", Some(ACME), None, &[])
        .await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.headers[header::CONTENT_TYPE], "application/scim+json");
}

#[tokio::test]
async fn user_lifecycle_with_etags_filters_and_events() {
    let api = api().await;
    let created = api.post("/Users", ACME, user("Ada@Example.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers[header::LOCATION],
        format!("https://scim.test/scim/v2/Users/{id}")
    );
    assert_eq!(created.headers[header::ETAG], "W/\"1\"");
    assert_eq!(created.body["meta"]["version"], "W/\"1\"");
    assert!(
        created.body["name"].get("familyName").is_none(),
        "nulls in create bodies are dropped"
    );

    // uniqueness is case-insensitive for userName
    assert_scim_error(
        &api.post("/Users", ACME, user("ada@example.COM")).await,
        409,
        Some("uniqueness"),
    );
    assert_scim_error(
        &api.post("/Users", ACME, json!({"active": true})).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &api.call("POST", "/Users", Some(ACME), None, &[]).await,
        400,
        Some("invalidSyntax"),
    );

    // Entra's lookup, then a miss, then a bad filter
    let found = api
        .call(
            "GET",
            "/Users?filter=userName%20eq%20%22ADA%40example.com%22",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    let none = api
        .call(
            "GET",
            "/Users?filter=userName%20eq%20%22nobody%22",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (none.status, none.body["totalResults"].clone()),
        (StatusCode::OK, json!(0))
    );
    let by_ext = api
        .call(
            "GET",
            "/Users?filter=externalId%20eq%20%22ext-Ada%40Example.com%22",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(by_ext.body["totalResults"], 1);
    assert_scim_error(
        &api.call("GET", "/Users?filter=userName%20eq", Some(ACME), None, &[])
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &api.call("GET", "/Users?startIndex=x", Some(ACME), None, &[])
            .await,
        400,
        Some("invalidValue"),
    );

    // If-None-Match, then Entra deactivation with If-Match
    let nm = api
        .call(
            "GET",
            &format!("/Users/{id}"),
            Some(ACME),
            None,
            &[("If-None-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(nm.status, StatusCode::NOT_MODIFIED);
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let p = api
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(ACME),
            Some(deactivate.clone()),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["active"], false);
    assert_eq!(p.headers[header::ETAG], "W/\"2\"");
    assert_scim_error(
        &api.call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(ACME),
            Some(deactivate),
            &[("If-Match", "W/\"1\"")],
        )
        .await,
        412,
        None,
    );

    // projection
    let slim = api
        .call(
            "GET",
            &format!("/Users/{id}?attributes=userName"),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(
        slim.body
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .len(),
        3,
        "{}",
        slim.body
    );

    let del = api
        .call("DELETE", &format!("/Users/{id}"), Some(ACME), None, &[])
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_scim_error(
        &api.call("GET", &format!("/Users/{id}"), Some(ACME), None, &[])
            .await,
        404,
        None,
    );

    let types: Vec<String> = api
        .store
        .outbox_pending(100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            assert_eq!(p.entry.actor.id, "entra");
            assert_eq!(p.entry.tenant_id.as_str(), "acme");
            p.entry.event_type
        })
        .collect();
    assert_eq!(
        types,
        vec![
            "scim.user.created",
            "scim.user.deactivated",
            "scim.user.deleted"
        ]
    );
}

#[tokio::test]
async fn group_membership_without_member_lists() {
    let api = api().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = api
            .post("/Users", ACME, user(&format!("u{n}@x.test")))
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let g = api
        .post("/Groups", ACME, json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Admins", "members": [{"value": ids[0]}]}))
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    assert_eq!(g.body["members"], json!([{"value": ids[0]}]));

    // Okta add, Entra default removal (only the named member), aadOptscim062020 removal
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}, {"value": ids[0]}]},
        {"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}
    ]});
    let p = api
        .call(
            "PATCH",
            &format!("/Groups/{gid}?excludedAttributes=members"),
            Some(ACME),
            Some(ops),
            &[],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.body.get("members").is_none(),
        "excludedAttributes=members"
    );
    let g = api
        .call("GET", &format!("/Groups/{gid}"), Some(ACME), None, &[])
        .await;
    let mut members: Vec<String> = g.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = vec![ids[0].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(members, expected);

    let u = api
        .call("GET", &format!("/Users/{}", ids[2]), Some(ACME), None, &[])
        .await;
    assert_eq!(
        u.body["groups"][0]["value"],
        gid.as_str(),
        "User.groups from the reverse index"
    );

    let rm = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[2])}]});
    api.call(
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(ACME),
        Some(rm),
        &[],
    )
    .await;
    let events: Vec<String> = api
        .store
        .outbox_pending(100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.entry.event_type)
        .collect();
    let count = |t: &str| events.iter().filter(|e| *e == t).count();
    assert_eq!(
        count("scim.group.member_added"),
        3,
        "one event per membership actually added"
    );
    assert_eq!(count("scim.group.member_removed"), 2);

    // rename by path-less replace carrying the id back (Okta)
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Administrators"}}]});
    let r = api
        .call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(ACME),
            Some(rename),
            &[],
        )
        .await;
    assert_eq!(r.body["displayName"], "Administrators");
    let remove_all = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "members", "value": []}]});
    api.call(
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(ACME),
        Some(remove_all),
        &[],
    )
    .await;
    let g = api
        .call("GET", &format!("/Groups/{gid}"), Some(ACME), None, &[])
        .await;
    assert!(g.body.get("members").is_none(), "{}", g.body);
    assert_scim_error(
        &api.call("PATCH", &format!("/Groups/{gid}"), Some(ACME), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove"}]})), &[]).await,
        400,
        Some("noTarget"),
    );
}

#[tokio::test]
async fn no_request_reaches_another_tenants_data() {
    let api = api().await;
    let a = api.post("/Users", ACME, user("shared@x.test")).await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    // the same userName is free in another tenant
    let b = api.post("/Users", GLOBEX, user("shared@x.test")).await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert_scim_error(
        &api.call("GET", &format!("/Users/{id}"), Some(GLOBEX), None, &[])
            .await,
        404,
        None,
    );
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_scim_error(
        &api.call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(GLOBEX),
            Some(patch),
            &[],
        )
        .await,
        404,
        None,
    );
    assert_scim_error(
        &api.call("DELETE", &format!("/Users/{id}"), Some(GLOBEX), None, &[])
            .await,
        404,
        None,
    );
    let list = api.call("GET", "/Users", Some(GLOBEX), None, &[]).await;
    assert_eq!(list.body["totalResults"], 1);
    assert_ne!(list.body["Resources"][0]["id"], id.as_str());
    let still = api
        .call("GET", &format!("/Users/{id}"), Some(ACME), None, &[])
        .await;
    assert_eq!(still.body["active"], true);
}

#[tokio::test]
async fn discovery_and_search() {
    let api = api().await;
    let s = api.call("GET", "/Schemas", Some(ACME), None, &[]).await;
    assert_eq!(s.body["totalResults"], 3);
    let user_schema = api
        .call(
            "GET",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            Some(ACME),
            None,
            &[],
        )
        .await;
    let attrs = user_schema.body["attributes"].as_array().unwrap();
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(
        (
            user_name["caseExact"].clone(),
            user_name["uniqueness"].clone()
        ),
        (json!(false), json!("server"))
    );
    let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    assert_scim_error(
        &api.call("GET", "/Schemas/urn:nope", Some(ACME), None, &[])
            .await,
        404,
        None,
    );
    assert_scim_error(
        &api.call("PUT", "/Schemas", Some(ACME), Some(json!({})), &[])
            .await,
        405,
        None,
    );
    assert_scim_error(
        &api.call("DELETE", "/ResourceTypes", Some(ACME), None, &[])
            .await,
        405,
        None,
    );
    let rt = api
        .call("GET", "/ResourceTypes", Some(ACME), None, &[])
        .await;
    assert_eq!(rt.body["Resources"][0]["endpoint"], "/Users");

    api.post("/Users", ACME, user("s1@x.test")).await;
    api.post("/Users", ACME, user("s2@x.test")).await;
    let found = api
        .post("/Users/.search", ACME, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"s\"", "attributes": ["userName"], "count": 1}))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(
        (
            found.body["totalResults"].clone(),
            found.body["itemsPerPage"].clone()
        ),
        (json!(2), json!(1))
    );
    assert!(
        found.body["Resources"][0].get("emails").is_none(),
        "attributes honoured"
    );
}

#[tokio::test]
async fn sorting_and_stable_index_paging() {
    let api = api().await;
    for name in ["carol@x.test", "Alice@x.test", "bob@x.test", "dave@x.test"] {
        let mut body = user(name);
        if name.starts_with('d') {
            body.as_object_mut().unwrap().remove("name");
        }
        api.post("/Users", ACME, body).await;
    }
    let names = |r: &Reply| -> Vec<String> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_lowercase())
            .collect()
    };
    let asc = api
        .call("GET", "/Users?sortBy=userName", Some(ACME), None, &[])
        .await;
    assert_eq!(
        names(&asc),
        ["alice@x.test", "bob@x.test", "carol@x.test", "dave@x.test"],
        "case-insensitive"
    );
    let desc = api
        .call(
            "GET",
            "/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(names(&desc), ["carol@x.test", "bob@x.test"]);
    assert_eq!(
        (
            desc.body["startIndex"].clone(),
            desc.body["totalResults"].clone()
        ),
        (json!(2), json!(4))
    );
    // without sortBy, pages come in a stable order that covers everything once
    let mut seen = Vec::new();
    for start in [1, 3] {
        let page = api
            .call(
                "GET",
                &format!("/Users?startIndex={start}&count=2"),
                Some(ACME),
                None,
                &[],
            )
            .await;
        seen.extend(names(&page));
    }
    seen.sort();
    assert_eq!(seen.len(), 4);
    seen.dedup();
    assert_eq!(seen.len(), 4);
    let beyond = api
        .call("GET", "/Users?startIndex=10", Some(ACME), None, &[])
        .await;
    assert_eq!(
        (
            beyond.body["totalResults"].clone(),
            beyond.body["itemsPerPage"].clone()
        ),
        (json!(4), json!(0))
    );
    assert_scim_error(
        &api.call(
            "GET",
            "/Users?sortBy=userName&sortOrder=sideways",
            Some(ACME),
            None,
            &[],
        )
        .await,
        400,
        Some("invalidValue"),
    );
    // a missing sort value sorts last
    let by_given = api
        .call("GET", "/Users?sortBy=name.givenName", Some(ACME), None, &[])
        .await;
    assert_eq!(names(&by_given).last().unwrap(), "dave@x.test");
}

#[tokio::test]
async fn per_tenant_rate_limit_answers_429_with_retry_after() {
    let api = Api::two_tenants(scim::RateLimit::new(0.5, 2)).await;
    for _ in 0..2 {
        assert_eq!(
            api.call("GET", "/Users", Some(ACME), None, &[])
                .await
                .status,
            StatusCode::OK
        );
    }
    let limited = api.call("GET", "/Users", Some(ACME), None, &[]).await;
    assert_scim_error(&limited, 429, None);
    assert_eq!(limited.headers[header::RETRY_AFTER], "2");
    assert_eq!(
        api.call("GET", "/Users", Some(GLOBEX), None, &[])
            .await
            .status,
        StatusCode::OK,
        "other tenants unaffected"
    );
}

#[tokio::test]
async fn tokens_rotate_expire_and_policy_is_per_tenant() {
    use scim::tenants::{new_token, token_hash};
    use scim::{CompatPolicy, Credential, PolicyStore, TenantDirectory, UnknownMembers};
    let api = api().await;
    let acme = envelope::TenantId::parse("acme").unwrap();
    let now = chrono::Utc::now();

    // rotation: a second token works beside the first, then the first is revoked
    let next = new_token();
    api.store
        .put_credential(&Credential::new(&next, acme.clone(), "entra", now))
        .await
        .unwrap();
    let ok = |r: &auditlog_tests::scim_http::Reply| r.status == StatusCode::OK;
    assert!(ok(&api.call("GET", "/Users", Some(&next), None, &[]).await));
    assert!(ok(&api.call("GET", "/Users", Some(ACME), None, &[]).await));
    assert!(
        api.store
            .revoke_credential(&acme, &token_hash(ACME))
            .await
            .unwrap()
    );
    assert_scim_error(
        &api.call("GET", "/Users", Some(ACME), None, &[]).await,
        401,
        None,
    );
    assert!(ok(&api.call("GET", "/Users", Some(&next), None, &[]).await));
    // an expired token is refused like an unknown one
    let expired = new_token();
    let mut c = Credential::new(&expired, acme.clone(), "entra", now);
    c.expires_at = Some(now - chrono::Duration::seconds(1));
    api.store.put_credential(&c).await.unwrap();
    assert_scim_error(
        &api.call("GET", "/Users", Some(&expired), None, &[]).await,
        401,
        None,
    );
    // the same directory holds the audit API's tokens: valid, but never for SCIM
    let siem = tenants::new_token("audit");
    api.store
        .put_credential(&Credential::with_scopes(
            &siem,
            acme.clone(),
            "splunk",
            vec![scim::Scope::AuditRead, scim::Scope::AuditExport],
            now,
        ))
        .await
        .unwrap();
    for (method, path) in [("GET", "/Users"), ("POST", "/Users"), ("GET", "/Groups")] {
        let body = (method == "POST").then(|| serde_json::json!({"userName": "x@acme.test"}));
        assert_scim_error(
            &api.call(method, path, Some(&siem), body, &[]).await,
            403,
            None,
        );
    }

    // acme turns strict; globex keeps the lenient defaults
    api.store
        .put_policy(&acme, &CompatPolicy::strict())
        .await
        .unwrap();
    let string_bool = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let a = api.create_user(&next, "a@x.test").await;
    let g = api.create_user(GLOBEX, "g@y.test").await;
    assert_scim_error(
        &api.call(
            "PATCH",
            &format!("/Users/{a}"),
            Some(&next),
            Some(string_bool.clone()),
            &[],
        )
        .await,
        400,
        Some("invalidValue"),
    );
    let lenient = api
        .call(
            "PATCH",
            &format!("/Users/{g}"),
            Some(GLOBEX),
            Some(string_bool),
            &[],
        )
        .await;
    assert_eq!(lenient.body["active"], false, "{}", lenient.body);
    assert_scim_error(
        &api.call(
            "POST",
            "/Users",
            Some(&next),
            Some(json!({"userName": "no-schemas@x.test"})),
            &[],
        )
        .await,
        400,
        Some("invalidSyntax"),
    );

    // unknown members: refused by default, skipped when the tenant says so
    let globex = envelope::TenantId::parse("globex").unwrap();
    let grp = api
        .post(
            "/Groups",
            GLOBEX,
            json!({"displayName": "G", "members": [{"value": g}, {"value": "ghost"}]}),
        )
        .await;
    assert_scim_error(&grp, 400, Some("invalidValue"));
    api.store
        .put_policy(
            &globex,
            &CompatPolicy {
                unknown_members: UnknownMembers::Skip,
                ..CompatPolicy::default()
            },
        )
        .await
        .unwrap();
    let grp = api
        .post(
            "/Groups",
            GLOBEX,
            json!({"displayName": "G", "members": [{"value": g}, {"value": "ghost"}]}),
        )
        .await;
    assert_eq!(grp.status, StatusCode::CREATED, "{}", grp.body);
    assert_eq!(grp.body["members"], json!([{"value": g}]));
}

/// RFC 7644 §3.5.2 with a whole extension URN as the path: the extension's attributes
/// change, `schemas` lists exactly the extensions present, and remove removes it.
#[tokio::test]
async fn patch_with_a_whole_extension_urn_changes_that_extension() {
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let api = api().await;
    let id = api.create_user(ACME, "ext@acme.test").await;
    let patch = |ops: serde_json::Value| {
        let api = &api;
        let uri = format!("/Users/{id}");
        async move {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
            api.call("PATCH", &uri, Some(ACME), Some(body), &[]).await
        }
    };
    let r = patch(json!([{"op": "add", "path": EXT, "value": {"employeeNumber": "701984", "costCenter": "4130"}}])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[EXT]["employeeNumber"], "701984");
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", EXT])
    );
    assert!(
        r.body
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == EXT || !k.starts_with("urn:")),
        "no bogus extension key: {}",
        r.body
    );
    let r = patch(json!([{"op": "remove", "path": EXT}])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get(EXT).is_none(), "{}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    // emptied attribute by attribute, it is no longer listed either
    patch(json!([{"op": "add", "path": format!("{EXT}:department"), "value": "Ops"}])).await;
    let r = patch(json!([{"op": "remove", "path": format!("{EXT}:department")}])).await;
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
        "{}",
        r.body
    );
    // and the whole URN in attributes= selects the extension
    patch(json!([{"op": "add", "path": EXT, "value": {"division": "R&D"}}])).await;
    let r = api
        .call(
            "GET",
            &format!("/Users/{id}?attributes={EXT}"),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(r.body[EXT]["division"], "R&D", "{}", r.body);
    assert!(
        r.body.get("emails").is_none(),
        "only what was asked: {}",
        r.body
    );
}

/// POST /.search at the root (RFC 7644 §3.4.3): users then groups, one index-paged
/// sequence; sorting and cursors belong to one resource type and are refused here.
#[tokio::test]
async fn a_root_search_pages_over_every_resource_type() {
    let api = api().await;
    for n in ["a@acme.test", "b@acme.test", "c@acme.test"] {
        api.create_user(ACME, n).await;
    }
    for g in ["Ops", "Sales"] {
        let r = api
            .post(
                "/Groups",
                ACME,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": g}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    api.create_user(GLOBEX, "other@globex.test").await;
    let search = |body: serde_json::Value| {
        let api = &api;
        async move {
            let mut b = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
            b.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            api.post("/.search", ACME, b).await
        }
    };
    let names = |r: &Reply| -> Vec<String> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v.get("userName")
                    .or(v.get("displayName"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let r = search(json!({"startIndex": start, "count": 2})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["totalResults"], 5,
            "the other tenant's user is not counted"
        );
        assert_eq!(r.body["startIndex"], start);
        seen.extend(names(&r));
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(
        &seen[..3],
        ["a@acme.test", "b@acme.test", "c@acme.test"].map(String::from)
    );
    let mut groups = seen[3..].to_vec();
    groups.sort();
    assert_eq!(groups, ["Ops", "Sales"]);
    // a filter applies to every type: only groups have this displayName
    let r = search(json!({"filter": "displayName eq \"Ops\""})).await;
    assert_eq!(names(&r), ["Ops"]);
    assert_scim_error(
        &search(json!({"sortBy": "userName"})).await,
        400,
        Some("invalidValue"),
    );
}

/// Every enterprise-extension attribute, added and replaced by path, by the whole URN
/// and without a path: each response validates against the server's own /Schemas.
#[tokio::test]
async fn enterprise_attribute_changes_validate_against_the_servers_schemas() {
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let api = api().await;
    let schemas = auditlog_tests::scim_schema::Discovered::read(&api).await;
    let id = api.create_user(ACME, "ent@acme.test").await;
    let manager = api.create_user(ACME, "boss@acme.test").await;
    let values = [
        ("employeeNumber", json!("701984")),
        ("costCenter", json!("4130")),
        ("organization", json!("Universal Studios")),
        ("division", json!("Theme Park")),
        ("department", json!("Tour Operations")),
        ("manager", json!({"value": manager})),
    ];
    for (op, (attr, value)) in ["add", "replace"]
        .into_iter()
        .flat_map(|op| values.iter().map(move |v| (op, v)))
    {
        for operation in [
            json!({"op": op, "path": format!("{EXT}:{attr}"), "value": value}),
            json!({"op": op, "path": EXT, "value": {*attr: value}}),
            json!({"op": op, "value": {EXT: {*attr: value}}}),
        ] {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation]});
            let r = api
                .call(
                    "PATCH",
                    &format!("/Users/{id}"),
                    Some(ACME),
                    Some(body),
                    &[],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{operation}: {}", r.body);
            let wrong = schemas.violations(&r.body);
            assert!(wrong.is_empty(), "{operation}: {wrong:?}\n{}", r.body);
            assert!(r.body[EXT].get(*attr).is_some(), "{operation}: {}", r.body);
        }
    }
}
