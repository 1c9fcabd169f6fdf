//! Credentials, required headers and beta names, checked before a request reaches a behaviour.
//!
//! By default any key shaped like a real one (the credential type's `prefix`) is accepted;
//! `--key NAME=VALUE` pins the exact value of the credential type `NAME`. A key that is valid for another credential type
//! of the same manifest (a normal key on an admin function) is a 403, anything else a 401. The key
//! may come in the manifest's header or as `Authorization: Bearer`, which the official SDKs send;
//! a `kind: basic` credential as `Authorization: Basic base64(user:password)`, a `kind: query`
//! one in its query parameter. A function with `auth: optional` is answered without a key too
//! (a key that is sent is still checked); `auth: none` is never checked.

use axum::http::HeaderMap;

use super::server::Sim;
use super::wire::Reply;
use crate::manifest::{AuthMode, CredentialKind, CredentialType, Function};

/// Check a request (its headers and raw query); the beta names it sent on success.
pub fn check(
    sim: &Sim,
    f: &Function,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Vec<String>, Reply> {
    let manifest = &sim.integration.manifest;
    if let Some(cred_name) = &f.credential
        && let Some(ctype) = manifest.credentials.get(cred_name)
        && f.auth != AuthMode::None
    {
        let sent = presented(sim, ctype, headers, query);
        if !(f.auth == AuthMode::Optional && sent.is_none()) {
            check_key(sim, cred_name, ctype, sent)?;
        }
    }
    for name in manifest.headers.keys() {
        if !headers.contains_key(name.as_str()) {
            return Err(Reply::invalid(format!("{name}: header is required")));
        }
    }
    let mut betas = Vec::new();
    if let Some(b) = &manifest.betas {
        let mut unknown = Vec::new();
        for value in headers.get_all(b.header.as_str()) {
            for name in value.to_str().unwrap_or("").split(',') {
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                let known = b.known.iter().any(|k| k == name)
                    || manifest
                        .functions
                        .values()
                        .any(|g| g.betas.iter().any(|k| k == name));
                if !known {
                    unknown.push(name.to_string());
                }
                betas.push(name.to_string());
            }
        }
        // Mock mode accepts beta names it does not know (the SDKs' tests send made-up ones).
        if !unknown.is_empty() && !sim.opts.mock {
            let template = sim.family.map_or(
                "unknown value(s) `{names}` for the `{header}` header",
                |f| f.auth().unknown_beta,
            );
            return Err(Reply::invalid(
                template
                    .replace("{names}", &unknown.join(", "))
                    .replace("{header}", &b.header),
            ));
        }
    }
    Ok(betas)
}

/// The secret a `kind: basic` credential's `Authorization: Basic ...` header carries, in the
/// form the account stores it (see [`CredentialType::username`]).
fn basic_secret(ctype: &CredentialType, headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, encoded) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(bytes).ok()?;
    let (user, password) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
    let secret = match &ctype.username {
        Some(fixed) if fixed == user => password.to_string(),
        Some(_) => return None,
        None if password.is_empty() => user.to_string(),
        None => pair.clone(),
    };
    (!secret.is_empty()).then_some(secret)
}

/// The secret a request presents for `ctype`, if any.
fn presented(
    sim: &Sim,
    ctype: &CredentialType,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<String> {
    match ctype.effective_kind() {
        // Basic, or the key as a bearer token (some SDKs send a Basic-style key that way).
        CredentialKind::Basic => {
            return basic_secret(ctype, headers).or_else(|| bearer(headers));
        }
        CredentialKind::Query => {
            let name = ctype.query_param.as_deref()?;
            return super::request::parse_query(query)
                .remove(name)
                .and_then(|v| v.into_iter().next())
                .filter(|v| !v.is_empty());
        }
        CredentialKind::Header | CredentialKind::Bearer => {}
    }
    let scheme = ctype.effective_scheme();
    let strip = |v: &str| -> String {
        match &scheme {
            Some(scheme) => v
                .strip_prefix(scheme.as_str())
                .map(|r| r.trim_start().to_string())
                .unwrap_or_else(|| v.to_string()),
            None => v.to_string(),
        }
    };
    if let Some(v) = headers
        .get(ctype.header.as_str())
        .and_then(|v| v.to_str().ok())
        && !v.trim().is_empty()
    {
        return Some(strip(v.trim()));
    }
    let extra = sim.family.map(|f| f.auth().key_headers).unwrap_or(&[]);
    for h in extra {
        if let Some(v) = headers.get(*h).and_then(|v| v.to_str().ok())
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_string());
        }
    }
    bearer(headers)
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The exact value a credential type is pinned to, if the options pin it.
fn pinned<'a>(sim: &'a Sim, cred_name: &str) -> Option<&'a str> {
    sim.opts.keys.get(cred_name).map(String::as_str)
}

fn accepts(sim: &Sim, cred_name: &str, ctype: &CredentialType, value: &str) -> bool {
    match pinned(sim, cred_name) {
        Some(p) => p == value,
        None => match &ctype.prefix {
            Some(prefix) => value.starts_with(prefix.as_str()) && value.len() > prefix.len(),
            None => !value.is_empty(),
        },
    }
}

/// Where a credential travels, for messages: its header or query parameter.
fn carrier(ctype: &CredentialType) -> String {
    match (ctype.effective_kind(), &ctype.query_param) {
        (CredentialKind::Query, Some(q)) => format!("{q} query parameter"),
        _ => format!("{} header", ctype.header),
    }
}

fn check_key(
    sim: &Sim,
    cred_name: &str,
    ctype: &CredentialType,
    sent: Option<String>,
) -> Result<(), Reply> {
    let style = sim.family.map(|f| f.auth());
    let Some(value) = sent else {
        return Err(Reply::status(
            401,
            style
                .map(|s| s.missing.to_string())
                .unwrap_or_else(|| format!("{} is required", carrier(ctype))),
        ));
    };
    if accepts(sim, cred_name, ctype, &value) {
        return Ok(());
    }
    let other_kind = sim
        .integration
        .manifest
        .credentials
        .iter()
        .any(|(n, c)| n != cred_name && accepts(sim, n, c, &value));
    if other_kind {
        return Err(Reply::status(
            403,
            style.map(|s| s.forbidden.to_string()).unwrap_or_else(|| {
                format!(
                    "this function needs a {}; the key sent is of another kind",
                    ctype.label
                )
            }),
        ));
    }
    Err(Reply::status(
        401,
        style.map(|s| s.invalid.to_string()).unwrap_or_else(|| {
            match (ctype.effective_kind(), &ctype.query_param) {
                (CredentialKind::Query, Some(q)) => format!("invalid {q} query parameter"),
                _ => format!("invalid {}", ctype.header),
            }
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::Engine;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(auth).unwrap());
        h
    }

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn basic_credentials_decode_to_the_stored_secret() {
        let key: CredentialType =
            serde_yaml::from_str("{label: Key, kind: basic, hint: h}").unwrap();
        assert_eq!(
            basic_secret(&key, &headers(&basic("sk_1:"))).as_deref(),
            Some("sk_1")
        );
        assert_eq!(
            basic_secret(&key, &headers(&basic("me:pw"))).as_deref(),
            Some("me:pw")
        );
        assert_eq!(basic_secret(&key, &headers("Bearer sk_1")), None);
        assert_eq!(basic_secret(&key, &headers("Basic !!!")), None);
        let fixed: CredentialType =
            serde_yaml::from_str("{label: Pw, kind: basic, username: bot, hint: h}").unwrap();
        assert_eq!(
            basic_secret(&fixed, &headers(&basic("bot:pw123"))).as_deref(),
            Some("pw123")
        );
        assert_eq!(basic_secret(&fixed, &headers(&basic("eve:pw123"))), None);
    }
}
