//! Membership changes, O(members named) whatever the group's size: members are
//! looked up in batches, written with their events, and paged when listed.

#[allow(unused_imports)] // the parent's imports, shared by its parts
use super::*;

/// What a membership change knows about a member: whether it is a user or a group, and
/// its name for the audit record.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MemberInfo {
    kind: ResourceKind,
    display: Option<String>,
}

pub(super) type KnownMembers = std::collections::HashMap<String, MemberInfo>;

/// The member ids a group filter asks about. Only `members[value eq "id"]` and
/// `members.value eq "id"` can be answered without reading a whole member list (what
/// Entra ID and Okta send to check one membership); any other use of `members` is
/// refused rather than answered wrongly.
pub(super) fn member_ids_in_filter(f: &Filter) -> Result<Vec<String>, ScimError> {
    let unsupported = || {
        ScimError::of(
            ErrorKind::InvalidFilter,
            "members can only be filtered as members[value eq \"<id>\"]; list a group's members with GET /Groups/{id}/members",
        )
    };
    let is_members = |p: &crate::filter::AttrPath| p.attr.eq_ignore_ascii_case("members");
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(id))
            if is_members(p)
                && p.sub_attr
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("value")) =>
        {
            Ok(vec![id.clone()])
        }
        Filter::ValuePath(p, inner) if is_members(p) => match inner.as_ref() {
            Filter::Compare(v, CompareOp::Eq, CompValue::String(id))
                if v.sub_attr.is_none() && v.attr.eq_ignore_ascii_case("value") =>
            {
                Ok(vec![id.clone()])
            }
            _ => Err(unsupported()),
        },
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _)
            if is_members(p) =>
        {
            Err(unsupported())
        }
        Filter::Present(_) | Filter::Compare(..) | Filter::ValuePath(..) => Ok(vec![]),
        Filter::And(a, b) | Filter::Or(a, b) => {
            let mut ids = member_ids_in_filter(a)?;
            ids.extend(member_ids_in_filter(b)?);
            Ok(ids)
        }
        Filter::Not(inner) => member_ids_in_filter(inner),
    }
}

impl ScimService {
    /// Looks up every member a change names (O(members named), 16 reads in flight):
    /// its kind and display name. Members to add must exist in the caller's tenant and
    /// a group cannot contain itself; members to remove need not exist any more.
    pub(super) async fn resolve_members(
        &self,
        caller: &Caller,
        group_id: &str,
        changes: &[MemberChange],
    ) -> Result<KnownMembers, ScimError> {
        let mut to_add: Vec<&str> = Vec::new();
        let mut to_remove: Vec<&str> = Vec::new();
        for change in changes {
            match change {
                MemberChange::Add(ids) => to_add.extend(ids.iter().map(String::as_str)),
                MemberChange::Remove(ids) => to_remove.extend(ids.iter().map(String::as_str)),
                MemberChange::RemoveAll => {}
            }
        }
        if to_add.contains(&group_id) {
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                "a group cannot be a member of itself",
            ));
        }
        let known = self
            .lookup_members(caller, to_add.iter().chain(&to_remove).copied())
            .await?;
        let missing: Vec<&str> = to_add
            .iter()
            .copied()
            .filter(|id| !known.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().copied().take(10).collect();
            if caller.policy.unknown_members == crate::tenants::UnknownMembers::Skip {
                tracing::warn!(tenant = %caller.tenant, group_id, skipped = ?shown, "unknown members skipped by policy");
                return Ok(known);
            }
            return Err(ScimError::of(
                ErrorKind::InvalidValue,
                format!(
                    "{} member(s) are neither users nor groups of this tenant: {}",
                    missing.len(),
                    shown.join(", ")
                ),
            ));
        }
        Ok(known)
    }

    /// Kind and display name of every id that is a user or group of the tenant: users
    /// first, then groups among the rest, 1,000 ids at a time (bounded memory, and one
    /// store round trip per 100 ids where the store batches).
    pub(super) async fn lookup_members<'a>(
        &self,
        caller: &Caller,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<KnownMembers, ScimError> {
        let mut ids: Vec<&str> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        let mut known = KnownMembers::new();
        // an id longer than any written is nobody
        ids.retain(|id| id.len() <= MAX_KEY_VALUE_BYTES);
        for chunk in ids.chunks(1000) {
            let mut rest: Vec<String> = chunk.iter().map(|s| (*s).to_owned()).collect();
            for kind in ResourceKind::ALL {
                if rest.is_empty() {
                    break;
                }
                let attr = kind.unique_attribute();
                for r in self.store.get_many(&caller.tenant, kind, &rest).await? {
                    let display = get_ci(&r.body, attr)
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    known.insert(r.id, MemberInfo { kind, display });
                }
                rest.retain(|id| !known.contains_key(id));
            }
        }
        Ok(known)
    }

    /// Applies membership changes, one membership at a time, each with its event.
    pub(super) async fn change_members(
        &self,
        caller: &Caller,
        group: &Resource,
        changes: &[MemberChange],
        known: &KnownMembers,
    ) -> Result<(), ScimError> {
        let display = get_ci(&group.body, "displayName")
            .cloned()
            .unwrap_or(Value::Null);
        let group_ref = json!({"id": group.id, "displayName": display});
        let group_ref = &group_ref;
        let event = |event_type: &'static str, now: DateTime<Utc>, known: &KnownMembers| {
            let known = known.clone();
            move |m: &str| {
                let mut member = json!({"id": m, "type": "User"});
                if let Some(info) = known.get(m) {
                    member["type"] = json!(ResourceKind::name(info.kind));
                    if let Some(d) = &info.display {
                        member["display"] = json!(d);
                    }
                }
                self.event(
                    caller,
                    event_type,
                    now,
                    json!({"group": group_ref, "member": member}),
                )
            }
        };
        for change in changes {
            let now = self.clock.now();
            match change {
                MemberChange::Add(ids) => {
                    // only members that exist: the others were refused or, by the
                    // tenant's policy, skipped
                    let ids: Vec<String> = ids
                        .iter()
                        .filter(|id| known.contains_key(*id))
                        .cloned()
                        .collect();
                    self.store
                        .add_members(
                            &caller.tenant,
                            &group.id,
                            &ids,
                            &event("scim.group.member_added", now, known),
                        )
                        .await?;
                }
                MemberChange::Remove(ids) => {
                    self.store
                        .remove_members(
                            &caller.tenant,
                            &group.id,
                            ids,
                            &event("scim.group.member_removed", now, known),
                        )
                        .await?;
                }
                MemberChange::RemoveAll => {
                    // page by page: never the whole list at once
                    loop {
                        let page = self
                            .store
                            .members(&caller.tenant, &group.id, None, 1000)
                            .await?;
                        if page.is_empty() {
                            break;
                        }
                        let page_known = self
                            .lookup_members(caller, page.iter().map(String::as_str))
                            .await?;
                        self.store
                            .remove_members(
                                &caller.tenant,
                                &group.id,
                                &page,
                                &event("scim.group.member_removed", now, &page_known),
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A page of a group's members (`GET /Groups/{id}/members`, our extension): how a
    /// client reads a group past the `MAX_INLINE_MEMBERS` a group read carries. Cursor
    /// paged, O(count) per page whatever the group's size.
    pub async fn list_members(
        &self,
        caller: &Caller,
        group_id: &str,
        cursor: Option<&str>,
        count: Option<usize>,
    ) -> Result<Value, ScimError> {
        self.load(caller, ResourceKind::Group, group_id, None)
            .await?;
        let count = count.unwrap_or(MAX_MEMBER_PAGE).min(MAX_MEMBER_PAGE);
        let now = self.clock.now().timestamp();
        let scope = CursorScope::new(&caller.tenant, &["members", group_id]);
        let after = match cursor {
            Some(text) => scope.read(text, now)?.map(|c| c.id),
            None => None,
        };
        let mut page = self
            .store
            .members(&caller.tenant, group_id, after.as_deref(), count + 1)
            .await?;
        let more = page.len() > count;
        page.truncate(count);
        let resources: Vec<Value> = page
            .iter()
            .map(|m| json!({"value": m, "$ref": format!("{}/Users/{m}", self.base_url)}))
            .collect();
        let mut body = json!({
            "schemas": [LIST_SCHEMA],
            "itemsPerPage": resources.len(),
            "Resources": resources,
        });
        if more && let Some(last) = page.last() {
            body["nextCursor"] = json!(scope.issue(None, last, now));
        }
        Ok(body)
    }
}
