//! Anthropic behaviours: what the real API does beyond echoing an example (generated messages
//! and streams, token counts, the batch lifecycle, model lists, files, the Admin API), plus the
//! envelope and headers Anthropic puts on every response.
//!
//! Behaviour names are `anthropic.<function name>`; the manifest picks them per function.
//! [`Anthropic`] is this service's [`Family`]: the generic engine reaches everything here only
//! through that trait.

pub mod admin;
pub mod batches;
pub mod files;
pub mod messages;
pub mod models;
pub mod pagination;
pub mod reports;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::behaviours::{AuthStyle, Behaviour, Family, State};
use super::server::Sim;
use super::wire;

/// State that changes while the server runs; kept for its whole life.
pub struct Store {
    /// How long a Message Batch stays in progress (`--set batch_delay_ms=N`).
    pub batch_delay: Duration,
    pub batches: batches::Batches,
    pub files: files::Files,
    pub admin: admin::Admin,
}

impl Store {
    pub fn seeded(seed: u64) -> Self {
        Store {
            batch_delay: Duration::from_millis(DEFAULT_BATCH_DELAY_MS),
            batches: batches::Batches::seeded(),
            files: files::Files::seeded(),
            admin: admin::Admin::seeded(seed),
        }
    }
}

const DEFAULT_BATCH_DELAY_MS: u64 = 2000;

/// The server's store, even if a handler panicked while holding it (the data is still usable).
pub fn store(sim: &Sim) -> MutexGuard<'_, Store> {
    // Behaviours of this family only ever run with this family's state (the engine looks them
    // up in the family that made the state), so the downcast always succeeds.
    #[allow(clippy::expect_used)]
    let m = sim
        .state::<Mutex<Store>>()
        .expect("anthropic behaviours run with the anthropic store");
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Anthropic family (behaviour names `anthropic.*`).
pub struct Anthropic;

static AUTH: AuthStyle = AuthStyle {
    key_headers: &["x-api-key"],
    missing: "x-api-key header is required",
    invalid: "invalid x-api-key",
    forbidden: "Your API key does not have permission to use the specified resource.",
    unknown_beta: "Unexpected value(s) `{names}` for the `{header}` header. Please consult our documentation at platform.claude.com/docs or try again without the header.",
};

impl Family for Anthropic {
    fn prefix(&self) -> &'static str {
        "anthropic"
    }

    fn behaviours(&self) -> &'static [(&'static str, Behaviour)] {
        BEHAVIOURS
    }

    fn options(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "batch_delay_ms",
            "how long a Message Batch stays in progress, in milliseconds (default 2000)",
        )]
    }

    fn new_state(&self, seed: u64, settings: &BTreeMap<String, String>) -> Result<State, String> {
        let mut store = Store::seeded(seed);
        if let Some(v) = settings.get("batch_delay_ms") {
            let ms: u64 = v.trim().parse().map_err(|_| {
                format!("batch_delay_ms must be a number of milliseconds (got '{v}')")
            })?;
            store.batch_delay = Duration::from_millis(ms);
        }
        Ok(Box::new(Mutex::new(store)))
    }

    /// `{"type": "error", "error": {...}, "request_id": ...}`.
    fn decorate_error(&self, body: &mut Value, rid: &str) {
        if let Value::Object(map) = body {
            let mut out = serde_json::Map::new();
            out.insert("type".into(), json!("error"));
            out.append(map);
            out.insert("request_id".into(), json!(rid));
            *map = out;
        }
    }

    fn headers(&self, sim: &Sim) -> Vec<(String, String)> {
        headers(sim)
    }

    fn auth(&self) -> &AuthStyle {
        &AUTH
    }

    fn body_limit(&self, behaviour: Option<&str>, multipart: bool) -> usize {
        body_limit(behaviour, multipart)
    }

    fn overloaded(&self) -> (u16, Option<&'static str>, &'static str) {
        (529, Some("overloaded_error"), "Overloaded")
    }
}

/// The API's request size limits: Message Batches 256 MB, the Files API 500 MB, everything
/// else (Messages, token counting, admin) 32 MB.
fn body_limit(behaviour: Option<&str>, multipart: bool) -> usize {
    match behaviour {
        Some("anthropic.create_message_batch") => 256 << 20,
        _ if multipart => 500 << 20,
        Some("anthropic.upload_file") => 500 << 20,
        _ => 32 << 20,
    }
}

const BEHAVIOURS: &[(&str, Behaviour)] = &[
    ("anthropic.create_message", Behaviour(messages::create)),
    (
        "anthropic.count_message_tokens",
        Behaviour(messages::count_tokens),
    ),
    ("anthropic.create_message_batch", Behaviour(batches::create)),
    ("anthropic.list_message_batches", Behaviour(batches::list)),
    ("anthropic.get_message_batch", Behaviour(batches::get)),
    ("anthropic.cancel_message_batch", Behaviour(batches::cancel)),
    ("anthropic.delete_message_batch", Behaviour(batches::delete)),
    (
        "anthropic.get_message_batch_results",
        Behaviour(batches::results),
    ),
    ("anthropic.list_models", Behaviour(models::list)),
    ("anthropic.get_model", Behaviour(models::get)),
    ("anthropic.upload_file", Behaviour(files::upload)),
    ("anthropic.list_files", Behaviour(files::list)),
    ("anthropic.get_file", Behaviour(files::get)),
    ("anthropic.delete_file", Behaviour(files::delete)),
    ("anthropic.download_file", Behaviour(files::download)),
    (
        "anthropic.get_organization",
        Behaviour(admin::get_organization),
    ),
    ("anthropic.list_users", Behaviour(admin::list_users)),
    ("anthropic.get_user", Behaviour(admin::get_user)),
    ("anthropic.update_user", Behaviour(admin::update_user)),
    ("anthropic.remove_user", Behaviour(admin::remove_user)),
    (
        "anthropic.list_workspaces",
        Behaviour(admin::list_workspaces),
    ),
    ("anthropic.get_workspace", Behaviour(admin::get_workspace)),
    (
        "anthropic.create_workspace",
        Behaviour(admin::create_workspace),
    ),
    (
        "anthropic.update_workspace",
        Behaviour(admin::update_workspace),
    ),
    (
        "anthropic.archive_workspace",
        Behaviour(admin::archive_workspace),
    ),
    (
        "anthropic.list_workspace_members",
        Behaviour(admin::list_members),
    ),
    (
        "anthropic.add_workspace_member",
        Behaviour(admin::add_member),
    ),
    (
        "anthropic.get_workspace_member",
        Behaviour(admin::get_member),
    ),
    (
        "anthropic.update_workspace_member",
        Behaviour(admin::update_member),
    ),
    (
        "anthropic.remove_workspace_member",
        Behaviour(admin::remove_member),
    ),
    ("anthropic.list_api_keys", Behaviour(admin::list_api_keys)),
    ("anthropic.get_api_key", Behaviour(admin::get_api_key)),
    ("anthropic.update_api_key", Behaviour(admin::update_api_key)),
    ("anthropic.create_invite", Behaviour(admin::create_invite)),
    ("anthropic.list_invites", Behaviour(admin::list_invites)),
    ("anthropic.get_invite", Behaviour(admin::get_invite)),
    ("anthropic.delete_invite", Behaviour(admin::delete_invite)),
    ("anthropic.get_usage_report", Behaviour(reports::usage)),
    ("anthropic.get_cost_report", Behaviour(reports::cost)),
];

/// Rate-limit headers as the API sends them: fixed generous limits, reset a minute ahead.
fn headers(sim: &Sim) -> Vec<(String, String)> {
    let reset = wire::rfc3339(SystemTime::now() + wire::secs(60));
    let org = store(sim).admin.org_id.clone();
    let mut h = vec![("anthropic-organization-id".to_string(), org)];
    for (kind, limit) in [
        ("requests", 4000u64),
        ("tokens", 2_000_000),
        ("input-tokens", 1_600_000),
        ("output-tokens", 400_000),
    ] {
        h.push((
            format!("anthropic-ratelimit-{kind}-limit"),
            limit.to_string(),
        ));
        h.push((
            format!("anthropic-ratelimit-{kind}-remaining"),
            (limit - limit / 1000).to_string(),
        ));
        h.push((format!("anthropic-ratelimit-{kind}-reset"), reset.clone()));
    }
    h
}

/// A deterministic pseudo-random stream (splitmix64), so the same input and seed always give
/// the same text.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// FNV-1a: a stable hash of text (std's hasher may change between releases).
pub fn stable_hash(text: &str, seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// A deterministic id: `prefix` + 24 base62 characters derived from `basis`.
pub fn derived_id(prefix: &str, basis: &str, seed: u64) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = Rng::new(stable_hash(basis, seed));
    let mut s = String::from(prefix);
    s.push_str("01");
    for _ in 0..22 {
        s.push(B62[rng.below(62) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_follow_the_api() {
        assert_eq!(
            body_limit(Some("anthropic.create_message"), false),
            32 << 20
        );
        assert_eq!(
            body_limit(Some("anthropic.count_message_tokens"), false),
            32 << 20
        );
        assert_eq!(
            body_limit(Some("anthropic.create_message_batch"), false),
            256 << 20
        );
        assert_eq!(body_limit(Some("anthropic.upload_file"), true), 500 << 20);
        assert_eq!(body_limit(None, false), 32 << 20);
    }
}
