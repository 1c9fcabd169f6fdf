//! Credentials, required headers and beta names, checked before a request reaches a behaviour.
//!
//! By default any key shaped like a real one (the credential type's `prefix`) is accepted;
//! `--key NAME=VALUE` pins the exact value of the credential type `NAME`. A key that is valid for another credential type
//! of the same manifest (a normal key on an admin function) is a 403, anything else a 401. The key
//! may come in the manifest's header or as `Authorization: Bearer`, which the official SDKs send.

use axum::http::HeaderMap;

use super::server::Sim;
use super::wire::Reply;
use crate::manifest::{CredentialType, Function};

/// Check a request; the beta names it sent on success.
pub fn check(sim: &Sim, f: &Function, headers: &HeaderMap) -> Result<Vec<String>, Reply> {
    let manifest = &sim.integration.manifest;
    if let Some(cred_name) = &f.credential
        && let Some(ctype) = manifest.credentials.get(cred_name)
    {
        check_key(sim, cred_name, ctype, headers)?;
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

fn presented(sim: &Sim, ctype: &CredentialType, headers: &HeaderMap) -> Option<String> {
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
    headers: &HeaderMap,
) -> Result<(), Reply> {
    let style = sim.family.map(|f| f.auth());
    let Some(value) = presented(sim, ctype, headers) else {
        return Err(Reply::status(
            401,
            style
                .map(|s| s.missing.to_string())
                .unwrap_or_else(|| format!("{} header is required", ctype.header)),
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
