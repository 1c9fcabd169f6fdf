//! Credentials, required headers and beta names, checked before a request reaches a behaviour.
//!
//! By default any key shaped like a real one (the credential type's `prefix`) is accepted;
//! `--key NAME=VALUE` pins the exact value of the credential type `NAME`. A key that is valid for another credential type
//! of the same manifest (a normal key on an admin function) is a 403, anything else a 401. The key
//! may come in the manifest's header or as `Authorization: Bearer`, which the official SDKs send.

use axum::http::HeaderMap;

use super::server::Sim;
use super::wire::Reply;
use crate::manifest::{AuthMode, CredentialKind, CredentialType, Function};

/// Check a request (its headers and raw query string); the beta names it sent on success.
pub fn check(
    sim: &Sim,
    f: &Function,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Vec<String>, Reply> {
    let manifest = &sim.integration.manifest;
    if let Some(cred_name) = &f.credential
        && f.auth != AuthMode::None
        && let Some(ctype) = manifest.credentials.get(cred_name)
    {
        check_key(sim, cred_name, ctype, f.auth, headers, query)?;
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

/// The secret a request presents, in the form the executor was given it: a `kind: query`
/// credential from its query parameter, a `kind: basic` one decoded from `user:password` (the
/// password when the manifest fixes the user).
fn presented(
    sim: &Sim,
    ctype: &CredentialType,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<String> {
    match ctype.effective_kind() {
        CredentialKind::Query => {
            let name = ctype.query_param.as_deref()?;
            return query_value(query?, name).filter(|v| !v.is_empty());
        }
        CredentialKind::Basic => {
            return presented_header(sim, ctype, headers).map(|v| basic_secret(ctype, &v));
        }
        CredentialKind::Header | CredentialKind::Bearer => {}
    }
    presented_header(sim, ctype, headers)
}

/// The first value of query parameter `name`, percent-decoded (`+` is a space).
fn query_value(query: &str, name: &str) -> Option<String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// Undo the executor's Basic encoding: `user:password` with a fixed user gives the password;
/// without one, `user:` (a secret with no colon, Stripe-style) gives `user`, anything else the pair.
fn basic_secret(ctype: &CredentialType, encoded: &str) -> String {
    use base64::Engine;
    let Some(pair) = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return encoded.to_string();
    };
    match &ctype.username {
        Some(user) => pair
            .strip_prefix(&format!("{user}:"))
            .map(str::to_string)
            .unwrap_or(pair),
        None => match pair.strip_suffix(':') {
            Some(user) if !user.contains(':') => user.to_string(),
            _ => pair,
        },
    }
}

fn presented_header(sim: &Sim, ctype: &CredentialType, headers: &HeaderMap) -> Option<String> {
    // The effective scheme: `kind: bearer` means `Bearer` even when `scheme` is not written.
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

fn check_key(
    sim: &Sim,
    cred_name: &str,
    ctype: &CredentialType,
    auth: AuthMode,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Reply> {
    let style = sim.family.map(|f| f.auth());
    let Some(value) = presented(sim, ctype, headers, query) else {
        // `auth: optional`: a request without the credential is answered (public reads).
        if auth == AuthMode::Optional {
            return Ok(());
        }
        return Err(Reply::status(
            401,
            style.map(|s| s.missing.to_string()).unwrap_or_else(|| {
                match (ctype.effective_kind(), &ctype.query_param) {
                    (CredentialKind::Query, Some(param)) => {
                        format!("{param} query parameter is required")
                    }
                    _ => format!("{} header is required", ctype.header),
                }
            }),
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
        style
            .map(|s| s.invalid.to_string())
            .unwrap_or_else(|| format!("invalid {}", ctype.header)),
    ))
}
