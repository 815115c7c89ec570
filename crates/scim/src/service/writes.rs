//! Create, read, replace, patch and delete, each committed with its outbox event
//! and checked against `If-Match`.

#[allow(unused_imports)] // the parent's imports, shared by its parts
use super::*;

impl ScimService {
    pub async fn create(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        body: Value,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        check_schemas(&body, kind, &caller.policy)?;
        let members = if kind == ResourceKind::Group {
            patch_members(&body)?
        } else {
            vec![]
        };
        let body = clean_body(body, kind, &caller.policy, None)?;
        let id = self.ids.resource_id();
        let known = self
            .resolve_members(caller, &id, &[MemberChange::Add(members.clone())])
            .await?;
        let now = self.clock.now();
        let r = Resource {
            id,
            kind,
            version: 1,
            created: now,
            last_modified: now,
            body,
        };
        let event_type = kind.event_type(Change::Created);
        check_size(&r)?;
        let ev = self.event(caller, event_type, now, Self::summary(&r));
        self.store.create(&caller.tenant, &r, &[ev]).await?;
        if !members.is_empty() {
            self.change_members(caller, &r, &[MemberChange::Add(members)], &known)
                .await?;
        }
        Ok((self.render(caller, &r, shape).await?, r.version))
    }

    pub async fn get(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        let r = self.load(caller, kind, id, None).await?;
        Ok((self.render(caller, &r, shape).await?, r.version))
    }

    pub(super) async fn load(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        if id.len() > MAX_KEY_VALUE_BYTES {
            // no such id was ever written
            return Err(ScimError::not_found(&format!(
                "{} {id}",
                ResourceKind::name(kind)
            )));
        }
        let r = self
            .store
            .get(&caller.tenant, kind, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ScimError::not_found(&format!("{} {id}", ResourceKind::name(kind)))
                }
                e => e.into(),
            })?;
        if !if_match_ok(if_match, r.version) {
            return Err(ScimError::of(
                ErrorKind::PreconditionFailed,
                format!(
                    "If-Match does not match the current version {}",
                    etag(r.version)
                ),
            ));
        }
        Ok(r)
    }

    pub(super) async fn commit_update(
        &self,
        caller: &Caller,
        old: &Resource,
        body: Value,
    ) -> Result<Resource, ScimError> {
        let now = self.clock.now();
        let new = Resource {
            version: old.version + 1,
            last_modified: now,
            body,
            ..old.clone()
        };
        if new.body == old.body {
            return Ok(old.clone());
        }
        let mut payload = Self::summary(&new);
        let changed: Vec<String> = {
            let (a, b) = (old.body.as_object(), new.body.as_object());
            let mut keys: Vec<String> = a
                .into_iter()
                .chain(b)
                .flat_map(|m| m.keys().cloned())
                .collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| old.body.get(k) != new.body.get(k))
                .collect()
        };
        payload["changedAttributes"] = json!(changed);
        let was_active = get_ci(&old.body, "active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let is_active = get_ci(&new.body, "active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let event_type = old.kind.event_type(if was_active && !is_active {
            Change::Deactivated
        } else {
            Change::Updated
        });
        check_size(&new)?;
        let ev = self.event(caller, event_type, now, payload);
        self.store
            .update(&caller.tenant, &new, old.version, &[ev])
            .await?;
        Ok(new)
    }

    pub async fn replace(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        check_schemas(&body, kind, &caller.policy)?;
        let old = self.load(caller, kind, id, if_match).await?;
        if let Some(sent) = get_ci(&body, "id").and_then(Value::as_str)
            && sent != id
        {
            return Err(ScimError::of(ErrorKind::Mutability, "id cannot be changed"));
        }
        // PUT replaces members too (Rippling): compute the difference page by page
        let members = if kind == ResourceKind::Group && get_ci(&body, "members").is_some() {
            Some(patch_members(&body)?)
        } else {
            None
        };
        let body = clean_body(body, kind, &caller.policy, Some(&old.body))?;
        let changes = match members {
            Some(wanted) => vec![MemberChange::RemoveAll, MemberChange::Add(wanted)],
            None => vec![],
        };
        let known = self.resolve_members(caller, id, &changes).await?;
        let new = self.commit_update(caller, &old, body).await?;
        self.change_members(caller, &new, &changes, &known).await?;
        Ok((self.render(caller, &new, shape).await?, new.version))
    }

    pub async fn patch(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        request: &PatchRequest,
        if_match: Option<&str>,
        shape: &Shape,
    ) -> Result<(Value, u64), ScimError> {
        let old = self.load(caller, kind, id, if_match).await?;
        // the engine sees `id` so that a client sending it back unchanged is accepted
        let patched = patch::apply(&with_id(&old), request, kind, &caller.policy)?;
        let body = clean_body(patched.resource, kind, &caller.policy, Some(&old.body))?;
        // every named member is checked before anything is written: all or nothing
        let known = self.resolve_members(caller, id, &patched.members).await?;
        let new = self.commit_update(caller, &old, body).await?;
        self.change_members(caller, &new, &patched.members, &known)
            .await?;
        Ok((self.render(caller, &new, shape).await?, new.version))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let old = match self.load(caller, kind, id, if_match).await {
            Ok(old) => old,
            // the IdP retrying a delete that stopped half-way: finish it, still 404
            Err(e) if e.status == 404 => {
                if id.len() <= MAX_KEY_VALUE_BYTES {
                    self.store
                        .delete_leftovers(&caller.tenant, kind, id)
                        .await?;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let event_type = kind.event_type(Change::Deleted);
        let ev = self.event(caller, event_type, self.clock.now(), Self::summary(&old));
        Ok(self
            .store
            .delete(&caller.tenant, kind, id, Some(old.version), &[ev])
            .await?)
    }
}
