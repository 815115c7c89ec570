//! The two SCIM resource types (RFC 7643 §4) and the facts about each that the service,
//! the router and the stores share: name, endpoint, schema URN, unique attribute and the
//! types of the events a change produces.

use crate::service::{GROUP_SCHEMA, USER_SCHEMA};
use crate::store::UniqueAttr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// What a write did to a resource, as its event type says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    /// A user's `active` went from true to false.
    Deactivated,
    Deleted,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    /// As `meta.resourceType` and `/ResourceTypes` name it; also the stores' key part.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The collection under the base URL, without its slash: `Users`, `Groups`.
    pub fn collection(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The kind whose collection this is, case-insensitively (Bulk paths).
    pub fn of_collection(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.collection().eq_ignore_ascii_case(name))
    }

    /// The core schema URN.
    pub fn schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }

    /// The attribute unique per tenant and required: `userName`, a group's `displayName`.
    pub fn unique_attribute(self) -> &'static str {
        match self {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        }
    }

    /// The index the stores keep of `unique_attribute`.
    pub fn unique(self) -> UniqueAttr {
        match self {
            ResourceKind::User => UniqueAttr::UserName,
            ResourceKind::Group => UniqueAttr::DisplayName,
        }
    }

    /// The event type of a change (`scim.user.created`, ...). Only users deactivate; a
    /// group's deactivation is an update.
    pub fn event_type(self, change: Change) -> &'static str {
        match (self, change) {
            (ResourceKind::User, Change::Created) => "scim.user.created",
            (ResourceKind::User, Change::Updated) => "scim.user.updated",
            (ResourceKind::User, Change::Deactivated) => "scim.user.deactivated",
            (ResourceKind::User, Change::Deleted) => "scim.user.deleted",
            (ResourceKind::Group, Change::Created) => "scim.group.created",
            (ResourceKind::Group, Change::Updated | Change::Deactivated) => "scim.group.updated",
            (ResourceKind::Group, Change::Deleted) => "scim.group.deleted",
        }
    }
}

impl UniqueAttr {
    /// The kind of resource the index is over.
    pub fn kind(self) -> ResourceKind {
        match self {
            UniqueAttr::UserName => ResourceKind::User,
            UniqueAttr::DisplayName => ResourceKind::Group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fact_round_trips() {
        for k in ResourceKind::ALL {
            assert_eq!(ResourceKind::of_collection(k.collection()), Some(k));
            assert_eq!(
                ResourceKind::of_collection(&k.collection().to_uppercase()),
                Some(k)
            );
            assert_eq!(k.unique().kind(), k);
            assert!(k.event_type(Change::Created).starts_with("scim."));
        }
        assert_eq!(ResourceKind::of_collection("Schemas"), None);
        assert_eq!(
            ResourceKind::Group.event_type(Change::Deactivated),
            "scim.group.updated"
        );
    }
}
