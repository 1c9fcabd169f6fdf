//! The Admin API: a seeded organization with users, workspaces (and their members), API keys
//! and invites. Every change is kept for the life of the server, so a script can update a user
//! and read the new role back. Objects are stored as the JSON the API returns.

use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::derived_id;
use super::{pagination, store};
use crate::simulator::request::Call;
use crate::simulator::server::Sim;
use crate::simulator::wire::{self, Reply};

pub struct Admin {
    pub org_id: String,
    pub org_name: String,
    users: IndexMap<String, Value>,
    workspaces: IndexMap<String, Value>,
    /// Keyed by (workspace id, user id).
    members: IndexMap<(String, String), Value>,
    api_keys: IndexMap<String, Value>,
    invites: IndexMap<String, Value>,
}

const SEED_USERS: &[(&str, &str, &str, &str)] = &[
    ("ada", "Ada Lovelace", "ada@example.com", "admin"),
    ("grace", "Grace Hopper", "grace@example.com", "developer"),
    ("alan", "Alan Turing", "alan@example.com", "user"),
    (
        "katherine",
        "Katherine Johnson",
        "katherine@example.com",
        "billing",
    ),
    (
        "edsger",
        "Edsger Dijkstra",
        "edsger@example.com",
        "claude_code_user",
    ),
];

/// Objects with the fixed IDs of the API reference's examples (which the manifest's examples and
/// so the rendered docs use), the same for every `--seed`: the user `EXAMPLE_USER` is a
/// `workspace_user` of `EXAMPLE_WORKSPACE` and created `EXAMPLE_API_KEY` there;
/// `EXAMPLE_NEW_MEMBER` belongs to no workspace yet, so it can be added to one.
pub const EXAMPLE_USER: &str = "user_01WCz1FkmYMm4gnmykNKUu3Q";
pub const EXAMPLE_NEW_MEMBER: &str = "user_01Rv3nZcA8sTqWb6KLm2yJxP";
pub const EXAMPLE_WORKSPACE: &str = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ";
pub const EXAMPLE_API_KEY: &str = "apikey_01Rj2N8SVvo6BePZj99NhmiT";
pub const EXAMPLE_INVITE: &str = "invite_015gWxCN9Hfg2QhZwTK7Mdeu";

/// When the reference's example objects were made.
const EXAMPLE_CREATED: &str = "2024-10-30T23:58:27.427722Z";

fn uuid_like(basis: &str, seed: u64) -> String {
    let h1 = super::stable_hash(basis, seed);
    let h2 = super::stable_hash(&format!("{basis}#2"), seed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h1 >> 32,
        (h1 >> 16) & 0xffff,
        h1 & 0xfff,
        (h2 >> 48) & 0xfff,
        h2 & 0xffff_ffff_ffff
    )
}

fn workspace(id: &str, name: &str, created: &str, archived: Option<&str>, seed: u64) -> Value {
    json!({
        "id": id,
        "type": "workspace",
        "name": name,
        "created_at": created,
        "archived_at": archived,
        "display_color": "#6C5BB9",
        "compartment_id": uuid_like(id, seed),
        "data_residency": {"workspace_geo": "us", "allowed_inference_geos": "unrestricted", "default_inference_geo": "global"},
        "external_key_id": null,
        "tags": {},
    })
}

fn member(ws: &str, user: &str, role: &str) -> Value {
    json!({"type": "workspace_member", "workspace_id": ws, "user_id": user, "workspace_role": role})
}

impl Admin {
    pub fn seeded(seed: u64) -> Self {
        let mut users = IndexMap::new();
        let mut ids = Vec::new();
        for (i, (key, name, email, role)) in SEED_USERS.iter().enumerate() {
            let id = derived_id("user_", key, seed);
            users.insert(
                id.clone(),
                json!({"id": id, "type": "user", "name": name, "email": email, "role": role,
                       "added_at": format!("2024-10-{:02}T09:00:00.000000Z", 1 + i)}),
            );
            ids.push(id);
        }
        for (id, name, email, role, added_at) in [
            (
                EXAMPLE_USER,
                "Jane Doe",
                "user@emaildomain.com",
                "user",
                EXAMPLE_CREATED,
            ),
            (
                EXAMPLE_NEW_MEMBER,
                "John Smith",
                "developer@emaildomain.com",
                "developer",
                "2024-11-04T16:20:11.903117Z",
            ),
        ] {
            users.insert(
                id.to_string(),
                json!({"id": id, "type": "user", "name": name, "email": email, "role": role,
                       "added_at": added_at}),
            );
        }
        let ws_main = derived_id("wrkspc_", "research", seed);
        let ws_prod = derived_id("wrkspc_", "production", seed);
        let ws_old = derived_id("wrkspc_", "legacy", seed);
        let mut workspaces = IndexMap::new();
        workspaces.insert(
            ws_main.clone(),
            workspace(
                &ws_main,
                "Research",
                "2024-10-30T23:58:27.427722Z",
                None,
                seed,
            ),
        );
        workspaces.insert(
            ws_prod.clone(),
            workspace(
                &ws_prod,
                "Production",
                "2024-11-02T10:00:00.000000Z",
                None,
                seed,
            ),
        );
        workspaces.insert(
            ws_old.clone(),
            workspace(
                &ws_old,
                "Legacy",
                "2024-06-01T08:00:00.000000Z",
                Some("2025-01-15T12:00:00.000000Z"),
                seed,
            ),
        );
        let mut example_ws = workspace(
            EXAMPLE_WORKSPACE,
            "Workspace Name",
            EXAMPLE_CREATED,
            None,
            seed,
        );
        // The reference's values, so the simulator answers what the docs show.
        example_ws["compartment_id"] = json!("f8a7b6c5-d4e3-4f21-9a0b-1c2d3e4f5a6b");
        example_ws["tags"] = json!({"env": "prod"});
        workspaces.insert(EXAMPLE_WORKSPACE.to_string(), example_ws);
        let example_ws = EXAMPLE_WORKSPACE.to_string();
        let example_user = EXAMPLE_USER.to_string();
        let mut members = IndexMap::new();
        for (ws, user, role) in [
            (&ws_main, &ids[0], "workspace_admin"),
            (&ws_main, &ids[1], "workspace_developer"),
            (&ws_main, &ids[2], "workspace_user"),
            (&ws_prod, &ids[0], "workspace_admin"),
            (&ws_prod, &ids[1], "workspace_developer"),
            (&example_ws, &ids[0], "workspace_admin"),
            (&example_ws, &example_user, "workspace_user"),
        ] {
            members.insert((ws.clone(), user.clone()), member(ws, user, role));
        }
        let mut api_keys = IndexMap::new();
        for (key, name, ws, creator, status, hint) in [
            (
                "dev",
                "Research Key",
                &ws_main,
                &ids[1],
                "active",
                "sk-ant-api03-K9t...m4AA",
            ),
            (
                "ci",
                "CI Key",
                &ws_prod,
                &ids[0],
                "active",
                "sk-ant-api03-C3P...0kAA",
            ),
            (
                "old",
                "Old Key",
                &ws_main,
                &ids[0],
                "archived",
                "sk-ant-api03-BB8...x9AA",
            ),
        ] {
            let id = derived_id("apikey_", key, seed);
            api_keys.insert(
                id.clone(),
                json!({
                    "id": id, "type": "api_key", "name": name, "status": status,
                    "created_at": "2024-11-05T14:00:00.000000Z",
                    "created_by": {"id": creator, "type": "user"},
                    "expires_at": null,
                    "partial_key_hint": hint,
                    "workspace_id": ws,
                    "scope": {"type": "workspace", "workspace_id": ws},
                }),
            );
        }
        api_keys.insert(
            EXAMPLE_API_KEY.to_string(),
            json!({
                "id": EXAMPLE_API_KEY, "type": "api_key", "name": "Developer Key",
                "status": "active",
                "created_at": EXAMPLE_CREATED,
                "created_by": {"id": EXAMPLE_USER, "type": "user"},
                "expires_at": null,
                "partial_key_hint": "sk-ant-api03-R2D...igAA",
                "workspace_id": EXAMPLE_WORKSPACE,
                "scope": {"type": "workspace", "workspace_id": EXAMPLE_WORKSPACE},
            }),
        );
        let mut invites = IndexMap::new();
        let inv = derived_id("invite_", "margaret", seed);
        invites.insert(
            inv.clone(),
            json!({"id": inv, "type": "invite", "email": "margaret@example.com", "role": "developer",
                   "status": "pending", "invited_at": "2025-01-10T10:00:00.000000Z",
                   "expires_at": "2025-01-31T10:00:00.000000Z", "accepted_at": null, "rbac_group_ids": []}),
        );
        invites.insert(
            EXAMPLE_INVITE.to_string(),
            json!({"id": EXAMPLE_INVITE, "type": "invite", "email": "new.colleague@example.com",
                   "role": "developer", "status": "pending", "invited_at": EXAMPLE_CREATED,
                   "expires_at": "2024-11-20T23:58:27.427722Z", "accepted_at": null,
                   "rbac_group_ids": []}),
        );
        Admin {
            org_id: uuid_like("organization", seed),
            org_name: "Simulated Organization".into(),
            users,
            workspaces,
            members,
            api_keys,
            invites,
        }
    }
}

fn page_of(items: Vec<Value>, call: &Call) -> Reply {
    match pagination::page(&items, call, "id") {
        Ok(p) => Reply::json(p),
        Err(e) => e,
    }
}

/// A filter that may be one value or a list (`roles[]`), from the arguments or the raw query.
pub fn filter_values(call: &Call, names: &[&str]) -> Vec<String> {
    for n in names {
        if let Some(v) = call.arg(n) {
            return match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
        }
        if let Some(v) = call.query.get(*n) {
            return v.clone();
        }
    }
    vec![]
}

fn merge(target: &mut Value, body: &Value, fields: &[&str]) {
    for f in fields {
        if let Some(v) = body.get(*f) {
            target[*f] = v.clone();
        }
    }
}

fn merge_residency(w: &mut Value, call: &Call) {
    if let Some(Value::Object(dr)) = call.arg("data_residency") {
        for (k, v) in dr {
            w["data_residency"][k] = v.clone();
        }
    }
}

pub fn get_organization(sim: &Sim, _call: &Call) -> Reply {
    let store = store(sim);
    Reply::json(
        json!({"id": store.admin.org_id, "type": "organization", "name": store.admin.org_name}),
    )
}

pub fn list_users(sim: &Sim, call: &Call) -> Reply {
    let emails = filter_values(call, &["email"]);
    let roles = filter_values(call, &["roles", "role"]);
    let items: Vec<Value> = store(sim)
        .admin
        .users
        .values()
        .filter(|u| {
            emails.is_empty()
                || emails.iter().any(|e| {
                    u["email"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(e))
                })
        })
        .filter(|u| roles.is_empty() || roles.iter().any(|r| u["role"] == json!(r)))
        .cloned()
        .collect();
    page_of(items, call)
}

fn user_missing(id: &str) -> Reply {
    Reply::not_found(format!("User {id} not found"))
}

pub fn get_user(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).admin.users.get(id) {
        Some(u) => Reply::json(u.clone()),
        None => user_missing(id),
    }
}

pub fn update_user(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let role = call.str_arg("role").unwrap_or("");
    if ["admin", "owner", "primary_owner"].contains(&role) {
        return Reply::invalid(format!(
            "role: the '{role}' role cannot be assigned through the Admin API"
        ));
    }
    let mut store = store(sim);
    match store.admin.users.get_mut(id) {
        Some(u) => {
            if !role.is_empty() {
                u["role"] = json!(role);
            }
            Reply::json(u.clone())
        }
        None => user_missing(id),
    }
}

pub fn remove_user(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0).to_string();
    let mut store = store(sim);
    if store.admin.users.shift_remove(&id).is_none() {
        return user_missing(&id);
    }
    store.admin.members.retain(|(_, u), _| *u != id);
    Reply::json(json!({"id": id, "type": "user_deleted"}))
}

pub fn list_workspaces(sim: &Sim, call: &Call) -> Reply {
    let include_archived = call
        .arg("include_archived")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || call
            .query
            .get("include_archived")
            .is_some_and(|v| v.iter().any(|s| s == "true"));
    let ids = filter_values(call, &["ids"]);
    let items: Vec<Value> = store(sim)
        .admin
        .workspaces
        .values()
        .filter(|w| include_archived || w["archived_at"].is_null())
        .filter(|w| ids.is_empty() || ids.iter().any(|i| w["id"] == json!(i)))
        .cloned()
        .collect();
    page_of(items, call)
}

/// The API's limit on workspace names.
pub const WORKSPACE_NAME_MAX: usize = 40;

fn check_workspace_name(name: &str) -> Result<(), Reply> {
    let n = name.chars().count();
    if name.trim().is_empty() {
        return Err(Reply::invalid(
            "name: String should have at least 1 character",
        ));
    }
    if n > WORKSPACE_NAME_MAX {
        return Err(Reply::invalid(format!(
            "name: String should have at most {WORKSPACE_NAME_MAX} characters (got {n})"
        )));
    }
    Ok(())
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces. Stricter
/// checks (the service uses a full validator) would only reject what no test sends.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

fn workspace_missing(id: &str) -> Reply {
    Reply::not_found(format!("Workspace {id} not found"))
}

pub fn get_workspace(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).admin.workspaces.get(id) {
        Some(w) => Reply::json(w.clone()),
        None => workspace_missing(id),
    }
}

pub fn create_workspace(sim: &Sim, call: &Call) -> Reply {
    let Some(name) = call.str_arg("name") else {
        return Reply::invalid("name: Field required");
    };
    if let Err(e) = check_workspace_name(name) {
        return e;
    }
    let id = wire::ordered_id("wrkspc_");
    let mut w = workspace(
        &id,
        name,
        &wire::rfc3339(SystemTime::now()),
        None,
        sim.opts.seed,
    );
    merge(
        &mut w,
        &call.args,
        &["tags", "external_key_id", "display_color"],
    );
    merge_residency(&mut w, call);
    merge_privacy(&mut w, call);
    store(sim).admin.workspaces.insert(id, w.clone());
    Reply::json(w)
}

pub fn update_workspace(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let mut store = store(sim);
    let Some(w) = store.admin.workspaces.get_mut(id) else {
        return workspace_missing(id);
    };
    if !w["archived_at"].is_null() {
        return Reply::invalid(format!("Workspace {id} is archived and cannot be updated"));
    }
    if let Some(name) = call.str_arg("name")
        && let Err(e) = check_workspace_name(name)
    {
        return e;
    }
    merge(
        w,
        &call.args,
        &["name", "tags", "external_key_id", "display_color"],
    );
    merge_residency(w, call);
    merge_privacy(w, call);
    Reply::json(w.clone())
}

/// `inference_data_privacy`: the given members over the current ones (at creation over the
/// API's defaults: human review enabled, both storages internal).
fn merge_privacy(w: &mut Value, call: &Call) {
    let Some(Value::Object(given)) = call.arg("inference_data_privacy") else {
        return;
    };
    let current = w
        .get("inference_data_privacy")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| {
            json!({
                "human_review": {"type": "enabled"},
                "safeguards_storage": {"type": "internal"},
                "transcripts_storage": {"type": "internal"},
            })
        });
    let mut merged = current;
    if let Value::Object(m) = &mut merged {
        for (k, v) in given {
            m.insert(k.clone(), v.clone());
        }
    }
    if let Value::Object(map) = w {
        map.insert("inference_data_privacy".into(), merged);
    }
}

pub fn archive_workspace(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let mut store = store(sim);
    let Some(w) = store.admin.workspaces.get_mut(id) else {
        return workspace_missing(id);
    };
    if !w["archived_at"].is_null() {
        return Reply::invalid(format!("Workspace {id} is already archived"));
    }
    w["archived_at"] = json!(wire::rfc3339(SystemTime::now()));
    Reply::json(w.clone())
}

pub fn list_members(sim: &Sim, call: &Call) -> Reply {
    let ws = call.path_value(0);
    let store = store(sim);
    if !store.admin.workspaces.contains_key(ws) {
        return workspace_missing(ws);
    }
    let items: Vec<Value> = store
        .admin
        .members
        .iter()
        .filter(|((w, _), _)| w == ws)
        .map(|(_, m)| m.clone())
        .collect();
    drop(store);
    // Members have no `id`: the cursor is the user id.
    match pagination::page(&items, call, "user_id") {
        Ok(p) => Reply::json(p),
        Err(e) => e,
    }
}

pub fn add_member(sim: &Sim, call: &Call) -> Reply {
    let ws = call.path_value(0).to_string();
    let user = call.str_arg("user_id").unwrap_or("").to_string();
    let role = call
        .str_arg("workspace_role")
        .unwrap_or("workspace_user")
        .to_string();
    let mut store = store(sim);
    if !store.admin.workspaces.contains_key(&ws) {
        return workspace_missing(&ws);
    }
    if !store.admin.users.contains_key(&user) {
        return user_missing(&user);
    }
    let key = (ws.clone(), user.clone());
    if store.admin.members.contains_key(&key) {
        return Reply::invalid(format!("User {user} is already a member of workspace {ws}"));
    }
    let m = member(&ws, &user, &role);
    store.admin.members.insert(key, m.clone());
    Reply::json(m)
}

fn member_missing(ws: &str, user: &str) -> Reply {
    Reply::not_found(format!("User {user} is not a member of workspace {ws}"))
}

fn member_key(call: &Call) -> (String, String) {
    (
        call.path_value(0).to_string(),
        call.path_value(1).to_string(),
    )
}

pub fn get_member(sim: &Sim, call: &Call) -> Reply {
    let key = member_key(call);
    match store(sim).admin.members.get(&key) {
        Some(m) => Reply::json(m.clone()),
        None => member_missing(&key.0, &key.1),
    }
}

pub fn update_member(sim: &Sim, call: &Call) -> Reply {
    let key = member_key(call);
    let mut store = store(sim);
    match store.admin.members.get_mut(&key) {
        Some(m) => {
            merge(m, &call.args, &["workspace_role"]);
            Reply::json(m.clone())
        }
        None => member_missing(&key.0, &key.1),
    }
}

pub fn remove_member(sim: &Sim, call: &Call) -> Reply {
    let key = member_key(call);
    match store(sim).admin.members.shift_remove(&key) {
        Some(_) => Reply::json(
            json!({"type": "workspace_member_deleted", "workspace_id": key.0, "user_id": key.1}),
        ),
        None => member_missing(&key.0, &key.1),
    }
}

pub fn list_api_keys(sim: &Sim, call: &Call) -> Reply {
    let status = filter_values(call, &["status"]);
    let ws = filter_values(call, &["workspace_id"]);
    let creator = filter_values(call, &["created_by_user_id"]);
    let items: Vec<Value> = store(sim)
        .admin
        .api_keys
        .values()
        .filter(|k| status.is_empty() || status.iter().any(|s| k["status"] == json!(s)))
        .filter(|k| ws.is_empty() || ws.iter().any(|s| k["workspace_id"] == json!(s)))
        .filter(|k| creator.is_empty() || creator.iter().any(|s| k["created_by"]["id"] == json!(s)))
        .cloned()
        .collect();
    page_of(items, call)
}

fn key_missing(id: &str) -> Reply {
    Reply::not_found(format!("API key {id} not found"))
}

pub fn get_api_key(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).admin.api_keys.get(id) {
        Some(k) => Reply::json(k.clone()),
        None => key_missing(id),
    }
}

pub fn update_api_key(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    let mut store = store(sim);
    match store.admin.api_keys.get_mut(id) {
        Some(k) => {
            merge(k, &call.args, &["name", "status"]);
            Reply::json(k.clone())
        }
        None => key_missing(id),
    }
}

pub fn create_invite(sim: &Sim, call: &Call) -> Reply {
    let Some(email) = call.str_arg("email") else {
        return Reply::invalid("email: Field required");
    };
    if !valid_email(email) {
        return Reply::invalid(format!(
            "email: value is not a valid email address: '{email}'"
        ));
    }
    let role = call.str_arg("role").unwrap_or("user");
    let now = SystemTime::now();
    let id = wire::ordered_id("invite_");
    let mut inv = Map::new();
    inv.insert("id".into(), json!(id));
    inv.insert("type".into(), json!("invite"));
    inv.insert("email".into(), json!(email));
    inv.insert("role".into(), json!(role));
    inv.insert("status".into(), json!("pending"));
    inv.insert("invited_at".into(), json!(wire::rfc3339(now)));
    inv.insert(
        "expires_at".into(),
        json!(wire::rfc3339(now + wire::secs(21 * 24 * 3600))),
    );
    inv.insert("accepted_at".into(), Value::Null);
    inv.insert(
        "rbac_group_ids".into(),
        call.arg("rbac_group_ids").cloned().unwrap_or(json!([])),
    );
    let inv = Value::Object(inv);
    store(sim).admin.invites.insert(id, inv.clone());
    Reply::json(inv)
}

pub fn list_invites(sim: &Sim, call: &Call) -> Reply {
    let emails = filter_values(call, &["email"]);
    let roles = filter_values(call, &["roles", "role"]);
    let statuses = filter_values(call, &["statuses", "status"]);
    let items: Vec<Value> = store(sim)
        .admin
        .invites
        .values()
        .filter(|i| {
            emails.is_empty()
                || emails.iter().any(|e| {
                    i["email"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(e))
                })
        })
        .filter(|i| roles.is_empty() || roles.iter().any(|r| i["role"] == json!(r)))
        .filter(|i| statuses.is_empty() || statuses.iter().any(|s| i["status"] == json!(s)))
        .cloned()
        .collect();
    page_of(items, call)
}

fn invite_missing(id: &str) -> Reply {
    Reply::not_found(format!("Invite {id} not found"))
}

pub fn get_invite(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).admin.invites.get(id) {
        Some(i) => Reply::json(i.clone()),
        None => invite_missing(id),
    }
}

pub fn delete_invite(sim: &Sim, call: &Call) -> Reply {
    let id = call.path_value(0);
    match store(sim).admin.invites.shift_remove(id) {
        Some(_) => Reply::json(json!({"id": id, "type": "invite_deleted"})),
        None => invite_missing(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The docs' examples rely on these objects and relations, whatever the seed.
    #[test]
    fn example_objects_are_seeded_consistently_for_every_seed() {
        for seed in [0, 7] {
            let a = Admin::seeded(seed);
            for id in [EXAMPLE_USER, EXAMPLE_NEW_MEMBER] {
                assert!(a.users.contains_key(id), "{id}");
            }
            assert!(a.workspaces[EXAMPLE_WORKSPACE]["archived_at"].is_null());
            assert!(a.api_keys.contains_key(EXAMPLE_API_KEY));
            assert_eq!(a.invites[EXAMPLE_INVITE]["status"], "pending");
            let ws = EXAMPLE_WORKSPACE.to_string();
            assert_eq!(
                a.members[&(ws.clone(), EXAMPLE_USER.to_string())]["workspace_role"],
                "workspace_user"
            );
            assert!(
                !a.members
                    .contains_key(&(ws.clone(), EXAMPLE_NEW_MEMBER.to_string()))
            );
            // Every reference points at a seeded object.
            for ((w, u), m) in &a.members {
                assert!(
                    a.workspaces.contains_key(w) && a.users.contains_key(u),
                    "{m}"
                );
            }
            for k in a.api_keys.values() {
                let creator = k["created_by"]["id"].as_str().unwrap();
                let ws = k["workspace_id"].as_str().unwrap();
                assert!(a.users.contains_key(creator), "{k}");
                assert!(a.workspaces.contains_key(ws), "{k}");
                assert_eq!(k["scope"]["workspace_id"], ws);
            }
            let hints: std::collections::HashSet<_> = a
                .api_keys
                .values()
                .map(|k| &k["partial_key_hint"])
                .collect();
            assert_eq!(hints.len(), a.api_keys.len(), "key hints are unique");
        }
    }
}
