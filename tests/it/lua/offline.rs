//! `--offline` name lookup: typos are unknown functions, not accounts; user manifests get their
//! own simulator.

use serde_json::{Value, json};
use std::time::Duration;

use tempfile::TempDir;

use super::{assert_fails, ok};
use crate::support::Kosmo;

#[test]
fn offline_typos_are_unknown_functions_not_accounts() {
    let dir = TempDir::new().unwrap();
    let r = Kosmo::lua("return app.integrations.anthropic.creat_mesage{}")
        .offline()
        .dir(dir.path())
        .run();
    assert_fails(&r, "unknown_function");
    let suggestions = r.env["error"]["suggestions"].as_array().unwrap();
    assert!(
        suggestions.contains(&json!("create_message")),
        "{}",
        r.env["error"]
    );
    // An account configured in the user's config dir is still an account offline.
    std::fs::write(
        dir.path().join("credentials.yaml"),
        "anthropic:\n  work:\n    api_key: sk-ant-api03-test\n",
    )
    .unwrap();
    let r = Kosmo::lua("return app.integrations.anthropic.work.get_model('claude-sonnet-4-0').id ~= nil, tostring(app.integrations.anthropic.default)").offline().dir(dir.path()).run();
    assert_eq!(ok(&r), &json!([true, "app.integrations.anthropic.default"]));
    let r = Kosmo::lua("return app.integrations.anthropic.wrok.get_model('x')")
        .offline()
        .dir(dir.path())
        .run();
    assert_fails(&r, "unknown_function");
}

const PETSTORE: &str = r#"
name: petstore
label: Pet Store
summary: A small non-Anthropic fixture.
category: testing
base_url: https://pets.invalid
credentials:
  token: {label: Pet token, header: authorization, scheme: Bearer, prefix: pet_, hint: set PET_TOKEN, placeholder: pet_offline}
errors:
  type_pointer: /code
  message_pointer: /detail
groups: [{id: pets, title: Pets}]
functions:
  get_pet:
    group: pets
    class: read
    summary: Get a pet.
    method: GET
    path: /v2/pets/{pet_id}
    credential: token
    params:
      - {name: pet_id, in: path, required: true, type: string}
    simulator:
      response: {id: "{pet_id}", name: Rex, tags: [good]}
"#;

#[test]
fn offline_user_manifests_get_their_own_simulator() {
    let dir = TempDir::new().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("petstore.yaml"), PETSTORE).unwrap();
    let out = crate::support::kosmo(dir.path())
        .current_dir(dir.path())
        .env("KOSMO_MANIFEST_PATH", &manifests)
        .args([
            "integrations:lua",
            "--offline",
            "--json",
            "--eval",
            "local p = app.integrations.petstore.get_pet{pet_id = 'p1'} \
             local m = app.integrations.anthropic.get_model('claude-sonnet-4-0') \
             return p.id, p.name, p.tags[1], m.type",
        ])
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        env["result"],
        json!(["p1", "Rex", "good", "model"]),
        "{env}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
