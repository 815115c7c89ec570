//! `/Bulk` (RFC 7644 §3.7) over HTTP: bulkId references (forward ones included),
//! failOnErrors, the 413 limits, unresolvable and circular references, tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::scim_http::{ACME, Api, GLOBEX, assert_scim_error, user};
use scim::RateLimit;
use serde_json::{Value, json};

async fn api() -> Api {
    Api::two_tenants(RateLimit::new(1e9, u32::MAX)).await
}

fn bulk(ops: Value, fail_on_errors: Option<u64>) -> Value {
    let mut v = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    if let Some(n) = fail_on_errors {
        v["failOnErrors"] = json!(n);
    }
    v
}

fn statuses(r: &Value) -> Vec<String> {
    r["Operations"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn bulk_creates_references_and_changes_in_one_request() {
    let api = api().await;
    // the group comes first and names a user created later in the same request
    let req = bulk(
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("alice@x.test")},
            {"method": "PATCH", "path": "/Users/bulkId:u1",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "displayName", "value": "Alice"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user("bob@x.test")},
            {"method": "DELETE", "path": "/Users/bulkId:u2"}
        ]),
        None,
    );
    let r = api.post("/Bulk", ACME, req).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    assert_eq!(statuses(&r.body), ["201", "201", "200", "201", "204"]);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops[0]["bulkId"], "g1");
    assert!(ops[1]["version"].as_str().unwrap().starts_with("W/"));
    let group_url = ops[0]["location"].as_str().unwrap();
    let user_url = ops[1]["location"].as_str().unwrap();
    let user_id = user_url.rsplit('/').next().unwrap();
    let group_id = group_url.rsplit('/').next().unwrap();

    let g = api
        .call("GET", &format!("/Groups/{group_id}"), Some(ACME), None, &[])
        .await;
    assert_eq!(
        g.body["members"],
        json!([{"value": user_id}]),
        "reference resolved"
    );
    let u = api
        .call("GET", &format!("/Users/{user_id}"), Some(ACME), None, &[])
        .await;
    assert_eq!(u.body["displayName"], "Alice");
    let bob = api
        .call(
            "GET",
            "/Users?filter=userName%20eq%20%22bob@x.test%22",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(bob.body["totalResults"], 0, "created then deleted");
}

#[tokio::test]
async fn fail_on_errors_stops_and_errors_are_per_operation() {
    let api = api().await;
    let req = bulk(
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": ""}},
            {"method": "PATCH", "path": "/Users/missing", "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": user("carol@x.test")}
        ]),
        Some(2),
    );
    let r = api.post("/Bulk", ACME, req.clone()).await;
    assert_eq!(
        statuses(&r.body),
        ["400", "404"],
        "stopped after the 2nd error"
    );
    assert_eq!(
        r.body["Operations"][0]["response"]["scimType"],
        "invalidValue"
    );
    let carol = api
        .call(
            "GET",
            "/Users?filter=userName%20eq%20%22carol@x.test%22",
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(
        carol.body["totalResults"], 0,
        "the operation after the stop never ran"
    );

    // without failOnErrors every operation runs
    let mut all = req;
    all.as_object_mut().unwrap().remove("failOnErrors");
    let r = api.post("/Bulk", ACME, all).await;
    assert_eq!(statuses(&r.body), ["400", "404", "201"]);

    // unresolvable and circular references fail with 409, the rest still runs
    let r = api
        .call(
            "POST",
            "/Bulk",
            Some(ACME),
            Some(bulk(
                json!([
                    {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "X", "members": [{"value": "bulkId:y"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"displayName": "Y", "members": [{"value": "bulkId:x"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "z", "data": {"displayName": "Z", "members": [{"value": "bulkId:nowhere"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "d", "data": user("dave@x.test")}
                ]),
                None,
            )),
            &[],
        )
        .await;
    assert_eq!(statuses(&r.body), ["409", "409", "409", "201"]);
}

#[tokio::test]
async fn bulk_limits_and_bad_requests() {
    let api = api().await;
    let many: Vec<Value> = (0..=scim::bulk::MAX_OPERATIONS)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")}))
        .collect();
    assert_scim_error(
        &api.post("/Bulk", ACME, bulk(json!(many), None)).await,
        413,
        None,
    );
    let huge = bulk(
        json!([{"method": "POST", "path": "/Users", "bulkId": "h",
                "data": {"userName": "h@x.test", "title": "x".repeat(scim::bulk::MAX_PAYLOAD)}}]),
        None,
    );
    assert_scim_error(&api.post("/Bulk", ACME, huge).await, 413, None);
    assert_scim_error(
        &api.post("/Bulk", ACME, json!({"Operations": "no"})).await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &api.call(
            "POST",
            "/Bulk",
            Some(ACME),
            Some(bulk(
                json!([{"method": "POST", "path": "/Users", "data": user("x@x.test")}]),
                None,
            )),
            &[],
        )
        .await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &api.call("POST", "/Bulk", None, Some(bulk(json!([]), None)), &[])
            .await,
        401,
        None,
    );
    let spc = api
        .call("GET", "/ServiceProviderConfig", Some(ACME), None, &[])
        .await;
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(
        spc.body["bulk"]["maxOperations"],
        scim::bulk::MAX_OPERATIONS
    );
}

#[tokio::test]
async fn bulk_cannot_reach_another_tenant() {
    let api = api().await;
    let eve = api.create_user(GLOBEX, "eve@y.test").await;
    let r = api
        .call(
            "POST",
            "/Bulk",
            Some(ACME),
            Some(bulk(
                json!([
                    {"method": "DELETE", "path": format!("/Users/{eve}")},
                    {"method": "PATCH", "path": format!("/Users/{eve}"), "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G", "members": [{"value": eve}]}}
                ]),
                None,
            )),
            &[],
        )
        .await;
    assert_eq!(statuses(&r.body), ["404", "404", "400"]);
    let still = api
        .call("GET", &format!("/Users/{eve}"), Some(GLOBEX), None, &[])
        .await;
    assert_eq!(still.body["active"], true);
}
