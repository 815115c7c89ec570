//! Lists and searches: filters (by index where one exists, else a bounded scan),
//! sorting and both paginations.

#[allow(unused_imports)] // the parent's imports, shared by its parts
use super::*;

pub(super) fn sort_path(sort: &Sort) -> Result<crate::filter::AttrPath, ScimError> {
    let path = parse_sort_path(sort)?;
    if ["members", "groups"]
        .iter()
        .any(|a| path.attr.eq_ignore_ascii_case(a))
    {
        // memberships are records of their own, not part of the resource sorted
        return Err(ScimError::of(
            ErrorKind::InvalidValue,
            format!("sortBy {:?}: lists cannot be sorted by membership", sort.by),
        ));
    }
    Ok(path)
}

pub(super) fn parse_sort_path(sort: &Sort) -> Result<crate::filter::AttrPath, ScimError> {
    crate::filter::PatchPath::parse(&sort.by)
        .ok()
        .and_then(|p| match p {
            crate::filter::PatchPath::Attr(a) => Some(a),
            _ => None,
        })
        .ok_or_else(|| {
            ScimError::of(
                ErrorKind::InvalidSyntax,
                format!("sortBy {:?} is not an attribute path", sort.by),
            )
        })
}

/// The value a resource sorts by; multi-valued attributes sort by their primary value,
/// else the first (RFC 7644 §3.4.2.3).
pub(super) fn sort_key(path: &crate::filter::AttrPath, r: &Resource) -> Option<String> {
    let exact = crate::filter::CaseExact::case_exact(&CoreSchemas, path);
    let probe = probe(r);
    let base = crate::filter::top_value(&probe, path)?;
    let v = match &path.sub_attr {
        Some(sub) => match base {
            Value::Array(items) => {
                let pick = items
                    .iter()
                    .find(|i| get_ci(i, "primary") == Some(&json!(true)))
                    .or(items.first())?;
                get_ci(pick, sub)?
            }
            v => get_ci(v, sub)?,
        },
        None => base,
    };
    Some(match v {
        Value::String(s) if exact => s.clone(),
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    })
}

/// List order: by sort key (missing keys last in either direction), then by id, so that
/// pages are stable and a cursor position is unambiguous.
pub(super) fn order(
    ka: Option<&str>,
    ida: &str,
    kb: Option<&str>,
    idb: &str,
    descending: bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    match (ka, kb) {
        (Some(x), Some(y)) if descending => y.cmp(x).then_with(|| ida.cmp(idb)),
        (Some(x), Some(y)) => x.cmp(y).then_with(|| ida.cmp(idb)),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => ida.cmp(idb),
    }
}

/// Does the filter mention attribute `attr` anywhere?
pub(super) fn filter_mentions(f: &Filter, attr: &str) -> bool {
    match f {
        Filter::Present(p) | Filter::Compare(p, _, _) => p.attr.eq_ignore_ascii_case(attr),
        Filter::ValuePath(p, inner) => {
            p.attr.eq_ignore_ascii_case(attr) || filter_mentions(inner, attr)
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            filter_mentions(a, attr) || filter_mentions(b, attr)
        }
        Filter::Not(inner) => filter_mentions(inner, attr),
    }
}

impl ScimService {
    /// A ListResponse. `userName eq` / `displayName eq` use the store's index; other
    /// filters scan at most `MAX_SCAN` resources. With `cursor` set (RFC 9865) and no
    /// filter or sort, a page costs O(count) whatever the tenant's size.
    pub async fn list(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        query: &ListQuery,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let count = query.count.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let filter = query
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(Filter::parse)
            .transpose()?;
        let sort_path = query.sort.as_ref().map(sort_path).transpose()?;
        let descending = query.sort.as_ref().is_some_and(|s| s.descending);
        let now = self.clock.now().timestamp();
        let scope = CursorScope::new(
            &caller.tenant,
            &[
                ResourceKind::name(kind),
                query.filter.as_deref().unwrap_or_default().trim(),
                query.sort.as_ref().map_or("", |s| s.by.as_str()),
                if descending { "desc" } else { "asc" },
            ],
        );
        if query.cursor.is_some() && query.start_index.is_some() {
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                "use either startIndex or cursor, not both",
            ));
        }
        let cursor = match &query.cursor {
            Some(text) => Some(scope.read(text, now)?),
            None => None,
        };
        if let Some(position) = &cursor
            && filter.is_none()
            && sort_path.is_none()
        {
            // the store's own order (by id) is the cursor order: read one page, plus one
            // item to know whether there is a next page
            let mut page = self
                .store
                .list(
                    &caller.tenant,
                    kind,
                    position.as_ref().map(|c| c.id.as_str()),
                    count + 1,
                )
                .await?;
            let more = page.len() > count;
            page.truncate(count);
            let next = more
                .then(|| page.last().map(|r| scope.issue(None, &r.id, now)))
                .flatten();
            return self
                .list_response(caller, &page, None, None, next, shape)
                .await;
        }

        let matches = self.matching(caller, kind, filter.as_ref()).await?;
        // each key once, not once per comparison (it clones the resource)
        let mut keyed: Vec<(Option<String>, Resource)> = matches
            .into_iter()
            .map(|r| (sort_path.as_ref().and_then(|p| sort_key(p, &r)), r))
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            order(ka.as_deref(), &a.id, kb.as_deref(), &b.id, descending)
        });
        let total = keyed.len();
        match cursor {
            Some(position) => {
                let from = match &position {
                    None => 0,
                    Some(c) => keyed.partition_point(|(k, r)| {
                        order(k.as_deref(), &r.id, c.key.as_deref(), &c.id, descending)
                            != std::cmp::Ordering::Greater
                    }),
                };
                let page: Vec<Resource> = keyed
                    .iter()
                    .skip(from)
                    .take(count)
                    .map(|(_, r)| r.clone())
                    .collect();
                let next = (count > 0 && from + count < total)
                    .then(|| {
                        keyed
                            .get(from + count - 1)
                            .map(|(k, r)| scope.issue(k.clone(), &r.id, now))
                    })
                    .flatten();
                self.list_response(caller, &page, Some(total), None, next, shape)
                    .await
            }
            None => {
                let start = query.start_index.unwrap_or(1).max(1);
                let page: Vec<Resource> = keyed
                    .iter()
                    .skip(start - 1)
                    .take(count)
                    .map(|(_, r)| r.clone())
                    .collect();
                self.list_response(caller, &page, Some(total), Some(start), None, shape)
                    .await
            }
        }
    }

    pub(super) async fn list_response(
        &self,
        caller: &Caller,
        page: &[Resource],
        total: Option<usize>,
        start_index: Option<usize>,
        next_cursor: Option<String>,
        shape: &Shape,
    ) -> Result<Value, ScimError> {
        let mut resources = Vec::with_capacity(page.len());
        for r in page {
            resources.push(self.render(caller, r, shape).await?);
        }
        let mut body = json!({
            "schemas": [LIST_SCHEMA],
            "itemsPerPage": resources.len(),
            "Resources": resources,
        });
        if let Some(total) = total {
            body["totalResults"] = json!(total);
        }
        if let Some(start) = start_index {
            body["startIndex"] = json!(start);
        }
        if let Some(next) = next_cursor {
            body["nextCursor"] = json!(next);
        }
        Ok(body)
    }

    /// Every resource of a kind matching the filter (at most `MAX_SCAN` scanned).
    pub(super) async fn matching(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        filter: Option<&Filter>,
    ) -> Result<Vec<Resource>, ScimError> {
        let unique_attr = (kind.unique_attribute(), kind.unique());
        if let Some(Filter::Compare(p, CompareOp::Eq, CompValue::String(v))) = filter
            && p.sub_attr.is_none()
            && p.attr.eq_ignore_ascii_case(unique_attr.0)
        {
            if v.len() > MAX_KEY_VALUE_BYTES {
                return Ok(Vec::new());
            }
            return Ok(self
                .store
                .find_unique(&caller.tenant, unique_attr.1, v)
                .await?
                .into_iter()
                .collect());
        }
        // Memberships are not part of a stored resource: a filter on a group's members
        // is answered from the reverse index of the ids it names, a filter on a user's
        // groups from that user's groups.
        let (member_probes, user_groups) = match (kind, filter) {
            (ResourceKind::Group, Some(f)) => {
                let mut probes = Vec::new();
                for id in member_ids_in_filter(f)? {
                    let groups = self.store.groups_of(&caller.tenant, &id).await?;
                    probes.push((id, groups));
                }
                (probes, false)
            }
            (ResourceKind::User, Some(f)) => (vec![], filter_mentions(f, "groups")),
            _ => (vec![], false),
        };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let (mut scanned, mut lookups) = (0, 0);
        let too_many = |what: &str| {
            ScimError::of(
                ErrorKind::TooMany,
                format!(
                    "the filter {what}; narrow it (userName eq or displayName eq use an index), or page with cursor and no filter"
                ),
            )
        };
        loop {
            let page = self
                .store
                .list(&caller.tenant, kind, after.as_deref(), 500)
                .await?;
            if page.is_empty() {
                break;
            }
            scanned += page.len();
            if scanned > self.limits.resources {
                return Err(too_many(&format!(
                    "would scan more than {} resources",
                    self.limits.resources
                )));
            }
            after = page.last().map(|r| r.id.clone());
            for r in page {
                let keep = match filter {
                    None => true,
                    Some(f) => {
                        let mut probe = probe(&r);
                        if let Some(obj) = probe.as_object_mut() {
                            let members: Vec<Value> = member_probes
                                .iter()
                                .filter(|(_, groups)| groups.contains(&r.id))
                                .map(|(id, _)| json!({"value": id}))
                                .collect();
                            if !members.is_empty() {
                                obj.insert("members".into(), Value::Array(members));
                            }
                            if user_groups {
                                lookups += 1;
                                if lookups > self.limits.group_lookups {
                                    return Err(too_many(&format!(
                                        "names groups, which reads each scanned user's groups: more than {} users",
                                        self.limits.group_lookups
                                    )));
                                }
                                let groups = self.store.groups_of(&caller.tenant, &r.id).await?;
                                let groups: Vec<Value> =
                                    groups.iter().map(|g| json!({"value": g})).collect();
                                obj.insert("groups".into(), Value::Array(groups));
                            }
                        }
                        f.matches(&probe, &CoreSchemas)
                    }
                };
                if keep {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(body: Value) -> Resource {
        Resource {
            id: "r1".into(),
            kind: ResourceKind::User,
            version: 1,
            created: chrono::DateTime::UNIX_EPOCH,
            last_modified: chrono::DateTime::UNIX_EPOCH,
            body,
        }
    }

    fn path(by: &str) -> crate::filter::AttrPath {
        sort_path(&Sort {
            by: by.into(),
            descending: false,
        })
        .unwrap()
    }

    #[test]
    fn sort_keys_follow_schema_paths_case_rules_and_primary_values() {
        let r = resource(json!({
            "userName": "Ada",
            "externalId": "X-1",
            "emails": [{"value": "b@x"}, {"value": "A@x", "primary": true}],
            ENTERPRISE_SCHEMA: {"department": "R&D"},
        }));
        assert_eq!(sort_key(&path("userName"), &r).as_deref(), Some("ada"));
        assert_eq!(
            sort_key(&path("externalId"), &r).as_deref(),
            Some("X-1"),
            "caseExact"
        );
        assert_eq!(
            sort_key(&path("emails.value"), &r).as_deref(),
            Some("a@x"),
            "the primary"
        );
        let dept = format!("{ENTERPRISE_SCHEMA}:department");
        assert_eq!(sort_key(&path(&dept), &r).as_deref(), Some("r&d"));
        assert_eq!(
            sort_key(&path("meta.resourceType"), &r).as_deref(),
            Some("user")
        );
        assert_eq!(sort_key(&path("title"), &r), None);
    }

    #[test]
    fn memberships_cannot_be_sorted_by_and_missing_keys_sort_last_both_ways() {
        for by in ["members.value", "groups", "GROUPS.display"] {
            let e = sort_path(&Sort {
                by: by.into(),
                descending: false,
            })
            .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidValue, "{by}");
        }
        use std::cmp::Ordering::{Greater, Less};
        for descending in [false, true] {
            assert_eq!(order(Some("a"), "1", None, "2", descending), Less);
            assert_eq!(order(None, "1", Some("a"), "2", descending), Greater);
        }
        assert_eq!(order(Some("a"), "1", Some("b"), "2", true), Greater);
        assert_eq!(
            order(Some("a"), "2", Some("a"), "1", true),
            Greater,
            "ties by id"
        );
    }

    #[test]
    fn group_filters_name_members_only_by_id_equality() {
        let ids = |f: &str| member_ids_in_filter(&Filter::parse(f).unwrap());
        assert_eq!(ids("members[value eq \"u1\"]").unwrap(), ["u1"]);
        assert_eq!(
            ids("members.value eq \"u1\" or displayName eq \"x\"").unwrap(),
            ["u1"]
        );
        assert!(ids("displayName sw \"A\"").unwrap().is_empty());
        for f in [
            "members pr",
            "members.value co \"u\"",
            "members[value sw \"u\"]",
        ] {
            assert_eq!(ids(f).unwrap_err().kind, ErrorKind::InvalidFilter, "{f}");
        }
        assert!(filter_mentions(
            &Filter::parse("not (groups.value eq \"g\")").unwrap(),
            "groups"
        ));
    }
}
