//! Reading large collections over HTTP: cursor pagination (RFC 9865), a group's members
//! page by page past what a group read inlines, the membership filters the IdPs send,
//! and the checks on the members a change names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use auditlog_tests::scim_http::{ACME, Api, GLOBEX, Reply, assert_scim_error};
use scim::{RateLimit, ScimStore};
use serde_json::{Value, json};

async fn api() -> Api {
    // these tests create thousands of resources: no rate limit in the way
    Api::two_tenants(RateLimit::new(1e9, u32::MAX)).await
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .map(|u| u["id"].as_str().or(u["value"].as_str()).unwrap().to_owned())
        .collect()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn group(api: &Api, token: &str, name: &str, members: &[String]) -> Reply {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    api.post("/Groups", token, json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members}))
    .await
}

/// Follows `nextCursor` from `first` to the end, returning every id in order.
async fn follow(api: &Api, token: &str, first: &str) -> (Vec<String>, usize) {
    let mut uri = first.to_owned();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let r = api.call("GET", &uri, Some(token), None, &[]).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        pages += 1;
        all.extend(ids(&r));
        match r.body["nextCursor"].as_str() {
            Some(next) => {
                let base = first.split("cursor=").next().unwrap();
                uri = format!("{base}cursor={next}");
            }
            None => return (all, pages),
        }
    }
}

#[tokio::test]
async fn cursor_pagination_covers_everything_once_in_order() {
    let api = api().await;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(api.create_user(ACME, &format!("u{n}@x.test")).await);
    }
    api.create_user(GLOBEX, "other@y.test").await;
    created.sort();

    let (seen, pages) = follow(&api, ACME, "/Users?count=3&cursor=").await;
    assert_eq!(
        seen, created,
        "every user once, in id order, no other tenant's"
    );
    assert_eq!(pages, 3);

    // filtered and sorted: the cursor keeps the sort order across pages
    let (seen, _) = follow(
        &api,
        ACME,
        "/Users?filter=userName%20sw%20%22u%22&sortBy=userName&sortOrder=descending&count=2&cursor=",
    )
    .await;
    assert_eq!(seen.len(), 7);
    let first = api
        .call("GET", "/Users?filter=userName%20sw%20%22u%22&sortBy=userName&sortOrder=descending&count=2&cursor=", Some(ACME), None, &[])
        .await;
    assert_eq!(first.body["totalResults"], 7);
    assert_eq!(first.body["Resources"][0]["userName"], "u6@x.test");
    assert!(first.body.get("startIndex").is_none());

    // POST /.search takes the cursor in the body
    let s = api
        .post("/Users/.search", ACME, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 5, "cursor": ""}))
        .await;
    assert_eq!(ids(&s), created[..5]);
    let next = s.body["nextCursor"].as_str().unwrap().to_owned();
    let s2 = api
        .post("/Users/.search", ACME, json!({"count": 5, "cursor": next}))
        .await;
    assert_eq!(ids(&s2), created[5..]);
    assert!(s2.body.get("nextCursor").is_none(), "last page");

    // a cursor is bound to its tenant and its query
    assert_scim_error(
        &api.call(
            "GET",
            &format!("/Users?cursor={next}"),
            Some(GLOBEX),
            None,
            &[],
        )
        .await,
        400,
        Some("invalidCursor"),
    );
    assert_scim_error(
        &api.call(
            "GET",
            &format!("/Users?filter=userName%20pr&cursor={next}"),
            Some(ACME),
            None,
            &[],
        )
        .await,
        400,
        Some("invalidCursor"),
    );
    assert_scim_error(
        &api.call("GET", "/Users?cursor=garbage", Some(ACME), None, &[])
            .await,
        400,
        Some("invalidCursor"),
    );
    assert_scim_error(
        &api.call("GET", "/Users?cursor=&startIndex=1", Some(ACME), None, &[])
            .await,
        400,
        Some("invalidValue"),
    );
    let spc = api
        .call("GET", "/ServiceProviderConfig", Some(ACME), None, &[])
        .await;
    assert_eq!(spc.body["pagination"]["cursor"], true);
    assert_eq!(spc.body["pagination"]["index"], true);
}

#[tokio::test]
async fn a_big_group_is_read_page_by_page() {
    let api = api().await;
    let mut users = Vec::new();
    for n in 0..2_300 {
        users.push(api.create_user(ACME, &format!("m{n}@x.test")).await);
    }
    let g = group(&api, ACME, "Everyone", &users).await;
    assert_eq!(g.status.as_u16(), 201, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        g.body["members"].as_array().unwrap().len(),
        scim::service::MAX_INLINE_MEMBERS,
        "a group read inlines a bounded number of members"
    );
    let (members, pages) = follow(&api, ACME, &format!("/Groups/{gid}/members?cursor=")).await;
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(members, expected, "every member once, in order");
    assert_eq!(pages, 3, "pages of {}", scim::service::MAX_MEMBER_PAGE);
    // another tenant cannot page this group
    assert_scim_error(
        &api.call(
            "GET",
            &format!("/Groups/{gid}/members"),
            Some(GLOBEX),
            None,
            &[],
        )
        .await,
        404,
        None,
    );
}

#[tokio::test]
async fn membership_filters_answer_from_the_index() {
    let api = api().await;
    let alice = api.create_user(ACME, "alice@x.test").await;
    let bob = api.create_user(ACME, "bob@x.test").await;
    let g = group(&api, ACME, "Admins", std::slice::from_ref(&alice)).await;
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let other = group(&api, ACME, "Others", std::slice::from_ref(&bob)).await;
    let other_id = other.body["id"].as_str().unwrap().to_owned();

    // Entra ID's membership check
    let check = |member: &str| {
        format!(
            "/Groups?excludedAttributes=members&filter=id%20eq%20%22{gid}%22%20and%20members%5Bvalue%20eq%20%22{member}%22%5D"
        )
    };
    let yes = api.call("GET", &check(&alice), Some(ACME), None, &[]).await;
    assert_eq!(ids(&yes), [gid.as_str()]);
    assert!(yes.body["Resources"][0].get("members").is_none());
    let no = api.call("GET", &check(&bob), Some(ACME), None, &[]).await;
    assert_eq!(no.body["totalResults"], 0);
    // which groups is bob in
    let of_bob = api
        .call(
            "GET",
            &format!("/Groups?filter=members.value%20eq%20%22{bob}%22"),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(ids(&of_bob), [other_id]);
    let not_alice = api
        .call(
            "GET",
            &format!("/Groups?filter=not%20(members%5Bvalue%20eq%20%22{alice}%22%5D)"),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(not_alice.body["totalResults"], 1);
    // users by group
    let in_admins = api
        .call(
            "GET",
            &format!("/Users?filter=groups%5Bvalue%20eq%20%22{gid}%22%5D"),
            Some(ACME),
            None,
            &[],
        )
        .await;
    assert_eq!(ids(&in_admins), [alice.as_str()]);
    // what cannot be answered without reading a member list is refused, not guessed
    assert_scim_error(
        &api.call("GET", "/Groups?filter=members%20pr", Some(ACME), None, &[])
            .await,
        400,
        Some("invalidFilter"),
    );
}

#[tokio::test]
async fn named_members_must_exist_in_the_tenant_and_nothing_is_half_applied() {
    let api = api().await;
    let alice = api.create_user(ACME, "alice@x.test").await;
    let foreign = api.create_user(GLOBEX, "eve@y.test").await;
    let g = group(&api, ACME, "Admins", &[]).await;
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let before = api.store.outbox_pending(1000).await.unwrap().len();

    // a rename plus members, one of which is another tenant's user: nothing happens
    let r = api
        .call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(ACME),
            Some(patch(json!([
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "add", "path": "members", "value": [{"value": alice}, {"value": foreign}]}
            ]))),
            &[],
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains(&foreign));
    let g = api
        .call("GET", &format!("/Groups/{gid}"), Some(ACME), None, &[])
        .await;
    assert_eq!(g.body["displayName"], "Admins");
    assert!(g.body.get("members").is_none());
    assert_eq!(api.store.outbox_pending(1000).await.unwrap().len(), before);
    assert_scim_error(
        &group(&api, ACME, "Ghosts", &["no-such-user".to_owned()]).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &api.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(ACME),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": gid}]}]),
            )),
            &[],
        )
        .await,
        400,
        Some("invalidValue"),
    );

    // a nested group is a member of type Group; events name the member
    let sub = group(&api, ACME, "Sub", &[]).await;
    let sub_id = sub.body["id"].as_str().unwrap().to_owned();
    let ok = api
        .call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(ACME),
            Some(patch(json!([{"op": "add", "path": "members", "value": [{"value": alice}, {"value": sub_id}]}]))),
            &[],
        )
        .await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.body);
    let added: Vec<Value> = api
        .store
        .outbox_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.entry.event_type == "scim.group.member_added")
        .map(|p| p.entry.payload["member"].clone())
        .collect();
    assert!(added.contains(&json!({"id": alice, "type": "User", "display": "alice@x.test"})));
    assert!(added.contains(&json!({"id": sub_id, "type": "Group", "display": "Sub"})));
}
