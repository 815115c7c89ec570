//! What to paste into each IdP's console once `tokens issue` has made a SCIM token:
//! where the base URL and the token go, and the mappings each IdP needs (docs/scim.md
//! has the compatibility policy that accepts each one's own forms).

/// The IdPs with their own instructions; any other name gets the generic ones.
pub const KNOWN: &[&str] = &["entra", "okta", "onelogin", "jumpcloud"];

pub fn guide(idp: &str, scim_url: &str, token: &str) -> String {
    let steps = match idp.to_ascii_lowercase().as_str() {
        "entra" | "entra-id" | "azure" | "aad" => format!(
            "Microsoft Entra ID: Enterprise applications > New application > Create your own application (non-gallery) > Provisioning > Provisioning Mode: Automatic.
  Tenant URL:    {scim_url}
  Secret Token:  {token}
  Test Connection, then Save. Mappings: keep the defaults (userName <- userPrincipalName, externalId <- mailNickname, active <- Switch([IsSoftDeleted], ...), emails[type eq \"work\"].value <- mail; groups: displayName, externalId <- objectId, members). The tenant's policy accepts Entra's forms (\"False\" as a boolean, member removal by value, filtered replace) by default."
        ),
        "okta" => format!(
            "Okta: Applications > Create App Integration (SAML 2.0 or SWA) > General > Provisioning: SCIM > Provisioning > Integration:
  SCIM connector base URL:                {scim_url}
  Unique identifier field for users:     userName
  Supported provisioning actions:        Push New Users, Push Profile Updates, Push Groups (and Import if wanted)
  Authentication Mode:                   HTTP Header; Authorization: Bearer {token}
  Test Connector Configuration, Save; then Provisioning > To App: enable Create Users, Update User Attributes, Deactivate Users. Okta deactivates rather than deletes (active=false), and renames groups with a PATCH replace: both are audited as such."
        ),
        "onelogin" => format!(
            "OneLogin: Applications > Add App > \"SCIM Provisioner with SAML (SCIM v2 Enterprise)\" > Configuration:
  SCIM Base URL:      {scim_url}
  SCIM Bearer Token:  {token}
  SCIM JSON Template: keep the default (userName <- email); Enable the API connection, then Provisioning > Enable provisioning, and Parameters > Groups: include in provisioning to push groups."
        ),
        "jumpcloud" => format!(
            "JumpCloud: SSO Applications > Add New Application > Custom Application > Identity Management > SCIM 2.0:
  Base URL:   {scim_url}
  Token Key:  {token}
  Test Connection, turn on Group Management to push the groups bound to the app, then Activate. JumpCloud sends PUT for user updates and removes members by value: both are accepted."
        ),
        _ => format!(
            "Any SCIM 2.0 client (RFC 7644):
  base URL:      {scim_url}
  bearer token:  {token}  (header Authorization: Bearer ...)
  Users need userName; groups displayName. Named IdPs with their own instructions: {}.",
            KNOWN.join(", ")
        ),
    };
    format!(
        "\nConnect the IdP\n{steps}\nThe token is the secret: paste it into the IdP only; `auditlog tokens revoke` ends it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_idp_gets_its_own_fields_with_the_url_and_token() {
        for (idp, field) in [
            ("entra", "Tenant URL"),
            ("okta", "SCIM connector base URL"),
            ("onelogin", "SCIM Base URL"),
            ("jumpcloud", "Token Key"),
            ("rippling", "Any SCIM 2.0 client"),
        ] {
            let g = guide(idp, "https://x.example/scim/v2", "scim_secret");
            assert!(g.contains(field), "{idp}: {g}");
            assert!(g.contains("https://x.example/scim/v2"), "{idp}");
            assert!(g.contains("scim_secret"), "{idp}");
        }
    }
}
