//! What the templates see: a manifest turned into plain data (parameter rows with wrapper fields
//! spelled out, kosmo call options, examples, Lua types). Every fact comes from the manifest or from
//! `validate::input_schema`, the same schema the executor enforces, so the docs cannot promise an
//! argument the runtime refuses.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::manifest::{Function, Location, Manifest, ResponseKind, Wrapper, schema_type_name};
use crate::validate::input_schema;

use super::lua;

/// How deep nested object fields are spelled out in parameter tables.
const MAX_DEPTH: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct IntegrationView {
    pub name: String,
    pub label: String,
    pub summary: String,
    pub description: String,
    pub docs_url: Option<String>,
    pub category: String,
    /// `app.integrations["<name>"]`, as the seed page writes it.
    pub namespace: String,
    /// `app.integrations.<name>`.
    pub root: String,
    pub page: String,
    pub intro: String,
    pub multi_account: Option<String>,
    /// Extra `docs:` sections of the manifest, in order: (title, markdown).
    pub sections: Vec<Section>,
    /// `docs.errors` of the manifest, shown on the errors guide page.
    pub errors_note: Option<String>,
    /// What the manifest's `retry:` declaration changes from the defaults, in one sentence.
    pub retry_note: Option<String>,
    pub groups: Vec<GroupView>,
    pub credentials: Vec<CredentialView>,
    pub default_credential: Option<String>,
    pub beta_header: Option<String>,
    pub beta_param: Option<String>,
    pub known_betas: Vec<String>,
    pub base_url_env: Option<String>,
    pub function_count: usize,
    /// The function the CLI section uses in its one-liners.
    pub cli_function: Option<String>,
    pub cli_args: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CredentialView {
    pub name: String,
    pub label: String,
    pub header: String,
    pub env: Option<String>,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Facts shared by every function of the group (beta header, credential), as markdown.
    pub notes: Vec<String>,
    pub functions: Vec<FunctionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AliasView {
    pub name: String,
    pub full_name: String,
}

/// A parameter table row; text fields are already escaped for a markdown table cell.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Display name: `id`, `payload.model`, `messages[].role`.
    pub name: String,
    pub r#type: String,
    pub required: bool,
    /// The default as a Lua literal.
    pub default: Option<String>,
    pub description: String,
    /// `param`, `wrapper` (a `payload` / `query` object) or `option` (understood by kosmo itself).
    pub kind: String,
    pub depth: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExampleView {
    pub title: String,
    pub args: Value,
    /// `args` as a Lua table literal, laid out for a call (rendered here once, not per page view).
    pub code: String,
    pub after: Option<String>,
    /// Built from the parameters' `example` values because the manifest has none.
    pub generated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LuaField {
    pub name: String,
    pub r#type: String,
    pub optional: bool,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LuaClass {
    pub name: String,
    pub fields: Vec<LuaField>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionView {
    pub name: String,
    pub integration: String,
    pub full_name: String,
    /// `<name>.<name>_<function>`, the form the seed page prints.
    pub qualified_name: String,
    pub lua_path: String,
    pub call: String,
    pub page: String,
    pub aliases: Vec<AliasView>,
    pub class: String,
    pub idempotent: bool,
    pub summary: String,
    /// `summary` ready for a markdown table cell.
    pub summary_cell: String,
    pub description: String,
    pub group: String,
    pub http: Option<String>,
    pub credential: Option<CredentialView>,
    pub betas: Vec<String>,
    pub response: String,
    pub stream_param: Option<String>,
    pub pagination: Option<String>,
    pub poll: Option<String>,
    pub unsupported: Option<String>,
    pub deprecated: Option<String>,
    pub passthrough: bool,
    pub wrappers: Vec<String>,
    pub rows: Vec<Row>,
    pub options: Vec<Row>,
    pub required: Vec<String>,
    pub optional: Vec<String>,
    pub examples: Vec<ExampleView>,
    /// `list_files({ query = { limit = 20 } })`.
    pub shape: String,
    pub args_class: String,
    pub lua_classes: Vec<LuaClass>,
    pub returns: String,
}

fn first_sentence_title(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Function names in documentation order: by group (declared groups first, in order), then in
/// manifest order within a group. [`integration`] groups the same way.
pub fn doc_order(m: &Manifest) -> Vec<&str> {
    let mut groups: Vec<&str> = m.groups.iter().map(|g| g.id.as_str()).collect();
    for f in m.functions.values() {
        if !groups.contains(&f.group.as_str()) {
            groups.push(&f.group);
        }
    }
    groups
        .into_iter()
        .flat_map(|g| {
            m.functions
                .iter()
                .filter(move |(_, f)| f.group == g)
                .map(|(n, _)| n.as_str())
        })
        .collect()
}

/// The view of one integration.
pub fn integration(m: &Manifest) -> IntegrationView {
    let default_credential = m.credentials.keys().next().cloned();
    let credentials: Vec<CredentialView> = m
        .credentials
        .iter()
        .map(|(k, c)| CredentialView {
            name: k.clone(),
            label: c.label.clone(),
            header: c.header.clone(),
            env: c.env.clone(),
            hint: c.hint.clone(),
        })
        .collect();
    let functions: Vec<FunctionView> = m.functions.iter().map(|(n, f)| function(m, n, f)).collect();

    let mut groups: IndexMap<String, GroupView> = m
        .groups
        .iter()
        .map(|g| {
            (
                g.id.clone(),
                GroupView {
                    id: g.id.clone(),
                    title: g.title.clone(),
                    description: g.description.trim().to_string(),
                    notes: Vec::new(),
                    functions: Vec::new(),
                },
            )
        })
        .collect();
    for fv in &functions {
        groups
            .entry(fv.group.clone())
            .or_insert_with(|| GroupView {
                id: fv.group.clone(),
                title: first_sentence_title(&fv.group),
                description: String::new(),
                notes: Vec::new(),
                functions: Vec::new(),
            })
            .functions
            .push(fv.clone());
    }
    let beta_header = m.betas.as_ref().map(|b| b.header.clone());
    for g in groups.values_mut() {
        let callable: Vec<&FunctionView> = g
            .functions
            .iter()
            .filter(|f| f.unsupported.is_none())
            .collect();
        if callable.is_empty() {
            continue;
        }
        // A group description that already states the fact (as the seed page does) wins.
        let betas = &callable[0].betas;
        if !betas.is_empty()
            && callable.iter().all(|f| &f.betas == betas)
            && let Some(h) = beta_header
                .as_ref()
                .filter(|h| !g.description.contains(&format!("{h}: {}", betas.join(","))))
        {
            g.notes.push(format!(
                "{} operations send the required beta header internally: `{h}: {}`.",
                g.title,
                betas.join(",")
            ));
        }
        let cred = callable[0].credential.as_ref().map(|c| c.name.clone());
        if let (Some(c), Some(default)) = (&cred, &default_credential)
            && c != default
            && !g.description.contains(&format!("`{c}`"))
            && callable
                .iter()
                .all(|f| f.credential.as_ref().map(|x| &x.name) == Some(c))
        {
            let label = m.credentials.get(c).map(|x| x.label.as_str()).unwrap_or(c);
            g.notes.push(format!(
                "The following tools require `{c}` ({label}), not the `{default}` credential."
            ));
        }
    }

    let mut sections = Vec::new();
    let mut intro = None;
    let mut multi_account = None;
    let mut errors_note = None;
    for (k, v) in &m.docs {
        let body = v.trim().to_string();
        match k.as_str() {
            "intro" => intro = Some(body),
            "multi_account" => multi_account = Some(body),
            "errors" => errors_note = Some(body),
            _ => sections.push(Section {
                title: first_sentence_title(k),
                body,
            }),
        }
    }
    let intro = intro.unwrap_or_else(|| {
        if m.description.trim().is_empty() {
            m.summary.trim().to_string()
        } else {
            m.description.trim().to_string()
        }
    });

    // The one-liners show a read with the default credential, a listing when there is one.
    let plain_read = |f: &&FunctionView| {
        f.class == "read"
            && f.unsupported.is_none()
            && f.poll.is_none()
            && f.credential.as_ref().map(|c| &c.name) == default_credential.as_ref()
            && !f.examples.is_empty()
    };
    let cli = functions
        .iter()
        .filter(plain_read)
        .find(|f| f.pagination.is_some())
        .or_else(|| functions.iter().find(plain_read))
        .or_else(|| functions.iter().find(|f| f.unsupported.is_none()));
    let (cli_function, cli_args) = match cli {
        Some(f) => (
            Some(f.name.clone()),
            f.examples
                .first()
                .map(|e| lua::inline(&e.args))
                .unwrap_or_else(|| "{}".into()),
        ),
        None => (None, "{}".into()),
    };

    IntegrationView {
        name: m.name.clone(),
        label: m.label.clone(),
        summary: m.summary.trim().to_string(),
        description: m.description.trim().to_string(),
        docs_url: m.docs_url.clone(),
        category: m.category.clone(),
        namespace: format!("app.integrations[{}]", lua::quote(&m.name)),
        root: format!("app.integrations.{}", m.name),
        page: format!("integrations.{}", m.name),
        intro,
        multi_account,
        sections,
        errors_note,
        retry_note: retry_note(m),
        function_count: functions.len(),
        groups: groups
            .into_values()
            .filter(|g| !g.functions.is_empty())
            .collect(),
        credentials,
        default_credential,
        beta_header,
        beta_param: m.betas.as_ref().map(|b| b.param.clone()),
        known_betas: m
            .betas
            .as_ref()
            .map(|b| b.known.clone())
            .unwrap_or_default(),
        base_url_env: m.account.base_url_env.clone(),
        cli_function,
        cli_args,
    }
}

/// The view of one function.
pub fn function(m: &Manifest, name: &str, f: &Function) -> FunctionView {
    let full_name = m.full_name(name, f);
    let schema = input_schema(m, f);
    let (rows, required, optional) = param_rows(f);
    let own: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    let mut options = Vec::new();
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (k, s) in props {
            if own.contains(&k.as_str()) {
                continue;
            }
            options.push(Row {
                name: k.clone(),
                r#type: schema_type_name(s),
                required: false,
                default: s.get("default").map(lua::inline),
                description: strip_option_prefix(&str_of(s, "description")),
                kind: "option".into(),
                depth: 0,
            });
        }
    }
    if let Some(s) = &f.stream {
        options.push(Row {
            name: "on_event".into(),
            r#type: "function".into(),
            required: false,
            default: None,
            description: if s.param.is_empty() {
                "Called with each event as it arrives; the call still returns the final result."
                    .into()
            } else {
                format!(
                    "Called with each event as it arrives when `{} = true`; the call still returns the final result.",
                    s.param
                )
            },
            kind: "option".into(),
            depth: 0,
        });
    }
    // Rows only ever appear in markdown tables: make them cell-ready once.
    let (mut rows, mut options) = (rows, options);
    for r in rows.iter_mut().chain(options.iter_mut()) {
        r.r#type = md_cell(&r.r#type);
        r.description = md_cell(&r.description);
        r.default = r.default.as_deref().map(md_cell);
    }
    let credential = f.credential.as_ref().and_then(|c| {
        m.credentials.get(c).map(|x| CredentialView {
            name: c.clone(),
            label: x.label.clone(),
            header: x.header.clone(),
            env: x.env.clone(),
            hint: x.hint.clone(),
        })
    });
    let examples = examples(f);
    let shape = format!(
        "{name}({})",
        examples
            .first()
            .map(|e| lua::shape(&e.args))
            .unwrap_or_else(|| "{}".into())
    );
    let args_class = format!("{}.{name}.args", m.name);
    let lua_classes = lua_classes(m, name, f, &schema, &args_class);
    let returns = if f.unsupported.is_some() {
        "nil".to_string()
    } else {
        match f.response {
            ResponseKind::Binary | ResponseKind::Jsonl => "kosmo.Body".into(),
            ResponseKind::Json | ResponseKind::Sse => "table".into(),
        }
    };
    FunctionView {
        name: name.to_string(),
        integration: m.name.clone(),
        qualified_name: format!("{}.{full_name}", m.name),
        full_name,
        lua_path: format!("app.integrations.{}.{name}", m.name),
        call: format!("app.integrations[{}].{name}", lua::quote(&m.name)),
        page: format!("integrations.{}.{name}", m.name),
        aliases: f
            .aliases
            .iter()
            .map(|a| AliasView {
                name: a.clone(),
                full_name: format!("{}_{a}", m.name),
            })
            .collect(),
        class: f.class.as_str().into(),
        idempotent: f.idempotent,
        summary: f.summary.trim().to_string(),
        summary_cell: md_cell(&f.summary),
        description: f.description.trim().to_string(),
        group: f.group.clone(),
        http: match (&f.method, &f.path) {
            (Some(meth), Some(p)) => Some(format!("{} {p}", meth.as_str())),
            _ => None,
        },
        credential,
        betas: f.betas.clone(),
        response: serde_json::to_value(f.response)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "json".into()),
        stream_param: f.stream.as_ref().map(|s| s.param.clone()),
        pagination: f.pagination.as_ref().map(|p| {
            serde_json::to_value(p.style)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }),
        poll: f.poll.as_ref().map(|p| {
            format!(
                "calls `{}` until `{}` is {}",
                p.function,
                p.until_pointer,
                p.until_values
                    .iter()
                    .map(|v| format!(
                        "`{}`",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    ))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        }),
        unsupported: f.unsupported.as_ref().map(|s| s.trim().to_string()),
        deprecated: f.deprecated.as_ref().map(|s| s.trim().to_string()),
        passthrough: f.passthrough,
        wrappers: f.wrappers.iter().map(|w| w.as_str().to_string()).collect(),
        rows,
        options,
        required,
        optional,
        examples,
        shape,
        args_class,
        lua_classes,
        returns,
    }
}

/// Text for a markdown table cell: one line, pipes escaped. Rows are rendered on every page view,
/// so this runs once when the view is built instead of as a template filter.
pub fn md_cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The executor's option descriptions start with "kosmo option:"; the tables mark options already.
fn strip_option_prefix(s: &str) -> String {
    match s.strip_prefix("kosmo option:") {
        Some(rest) => {
            let rest = rest.trim_start();
            let mut chars = rest.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        None => s.to_string(),
    }
}

/// The wrapper a parameter is shown under, if any.
fn wrapper_of(f: &Function, loc: Location) -> Option<&'static str> {
    let w = match loc {
        Location::Body => Wrapper::Payload,
        Location::Query => Wrapper::Query,
        _ => return None,
    };
    f.wrappers.contains(&w).then_some(w.as_str())
}

/// A description with the schema's constraints appended (`One of: ...`, `Minimum 1.`).
fn describe(base: &str, schema: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let base = base.trim();
    if !base.is_empty() {
        parts.push(base.to_string());
    }
    if let Some(Value::Array(vals)) = schema.get("enum") {
        let vals: Vec<String> = vals.iter().map(|v| format!("`{}`", plain(v))).collect();
        parts.push(format!("One of: {}.", vals.join(", ")));
    }
    if let Some(c) = schema.get("const") {
        parts.push(format!("Always `{}`.", plain(c)));
    }
    let bound = |k: &str| schema.get(k).map(plain);
    match (bound("minimum"), bound("maximum")) {
        (Some(lo), Some(hi)) => parts.push(format!("Range {lo}..{hi}.")),
        (Some(lo), None) => parts.push(format!("Minimum {lo}.")),
        (None, Some(hi)) => parts.push(format!("Maximum {hi}.")),
        (None, None) => {}
    }
    match (bound("minLength"), bound("maxLength")) {
        (Some(lo), Some(hi)) => parts.push(format!("Length {lo}..{hi}.")),
        (Some(lo), None) => parts.push(format!("Minimum length {lo}.")),
        (None, Some(hi)) => parts.push(format!("Maximum length {hi}.")),
        (None, None) => {}
    }
    match (bound("minItems"), bound("maxItems")) {
        (Some(lo), Some(hi)) => parts.push(format!("{lo} to {hi} items.")),
        (Some(lo), None) => parts.push(format!("At least {lo} item(s).")),
        (None, Some(hi)) => parts.push(format!("At most {hi} items.")),
        (None, None) => {}
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        parts.push(format!("Pattern `{p}`."));
    }
    parts.join(" ")
}

/// The schema's type name; a bare `const` or `enum` gets the type of its values instead of `any`.
fn type_name(schema: &Value) -> String {
    let name = schema_type_name(schema);
    if name != "any" {
        return name;
    }
    let values: Vec<&Value> = match (schema.get("const"), schema.get("enum")) {
        (Some(c), _) => vec![c],
        (None, Some(Value::Array(vals))) => vals.iter().collect(),
        _ => return name,
    };
    let mut names: Vec<&str> = Vec::new();
    for v in values {
        let n = match v {
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::Null => "null",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names.join(" | ")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows for a function's own parameters, with `payload.` / `query.` prefixes and nested fields.
/// Also the required and optional top-level names for the one-line summaries.
fn param_rows(f: &Function) -> (Vec<Row>, Vec<String>, Vec<String>) {
    let mut rows = Vec::new();
    let mut required = Vec::new();
    let mut optional = Vec::new();
    let mut wrappers_done: Vec<&str> = Vec::new();
    for p in &f.params {
        let wrapper = wrapper_of(f, p.location);
        if let Some(w) = wrapper
            && !wrappers_done.contains(&w)
        {
            wrappers_done.push(w);
            let loc = p.location;
            let any_required = f.params.iter().any(|q| q.location == loc && q.required);
            let what = if w == "payload" {
                "the JSON body"
            } else {
                "the query string"
            };
            rows.push(Row {
                name: w.to_string(),
                r#type: "object".into(),
                required: any_required,
                default: None,
                description: format!(
                    "Fields of {what}, listed below as `{w}.<field>`. The same fields are also accepted flat, without the `{w}` wrapper."
                ),
                kind: "wrapper".into(),
                depth: 0,
            });
        }
        let display = match wrapper {
            Some(w) => format!("{w}.{}", p.name),
            None => p.name.clone(),
        };
        if p.required {
            required.push(display.clone());
        } else {
            optional.push(display.clone());
        }
        let mut desc = describe(&p.description, &p.schema);
        if let Some(d) = &p.deprecated {
            desc = format!("Deprecated: {}. {desc}", d.trim().trim_end_matches('.'));
        }
        if p.send_default && p.default_value().is_some() {
            desc.push_str(" Sent with the default when left out.");
        }
        if let Some(role) = p.upload {
            let role = serde_json::to_value(role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            desc.push_str(&format!(" Upload: the file's `{role}`."));
        }
        rows.push(Row {
            name: display.clone(),
            r#type: type_name(&Value::Object(p.schema.clone())),
            required: p.required,
            default: p.default_value().map(lua::inline),
            description: desc.trim().to_string(),
            kind: "param".into(),
            depth: usize::from(wrapper.is_some()),
        });
        nested_rows(&Value::Object(p.schema.clone()), &display, 1, &mut rows);
    }
    (rows, required, optional)
}

/// Rows for a plain JSON Schema object (an MCP tool's input schema): its properties, and their
/// nested fields.
pub fn schema_rows(schema: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let required = required_names(schema);
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (k, s) in props {
            let empty = Map::new();
            let obj = s.as_object().unwrap_or(&empty);
            rows.push(Row {
                name: k.clone(),
                r#type: type_name(s),
                required: required.contains(k),
                default: s.get("default").map(lua::inline),
                description: describe(&str_of(s, "description"), obj),
                kind: "param".into(),
                depth: 0,
            });
            nested_rows(s, k, 1, &mut rows);
        }
    }
    rows
}

fn required_names(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["required", "required_properties"] {
        if let Some(Value::Array(a)) = schema.get(key) {
            out.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    out
}

/// Object properties (`prefix.field`) and array item properties (`prefix[].field`), recursively.
fn nested_rows(schema: &Value, prefix: &str, depth: usize, rows: &mut Vec<Row>) {
    if depth > MAX_DEPTH {
        return;
    }
    let (target, prefix) = match schema.get("properties") {
        Some(_) => (schema, prefix.to_string()),
        None => match schema.get("items") {
            Some(items) if items.get("properties").is_some() => (items, format!("{prefix}[]")),
            _ => return,
        },
    };
    let required = required_names(target);
    if let Some(Value::Object(props)) = target.get("properties") {
        for (k, s) in props {
            let name = format!("{prefix}.{k}");
            let empty = Map::new();
            let obj = s.as_object().unwrap_or(&empty);
            rows.push(Row {
                name: name.clone(),
                r#type: type_name(s),
                required: required.contains(k),
                default: s.get("default").map(lua::inline),
                description: describe(&str_of(s, "description"), obj),
                kind: "param".into(),
                depth: depth + 1,
            });
            nested_rows(s, &name, depth + 1, rows);
        }
    }
}

/// The manifest's examples, or one built from the required parameters' `example` values.
fn examples(f: &Function) -> Vec<ExampleView> {
    if f.unsupported.is_some() {
        return Vec::new();
    }
    if !f.examples.is_empty() {
        return f
            .examples
            .iter()
            .map(|e| ExampleView {
                title: e.title.trim().to_string(),
                code: lua::block(&e.args, 0, true),
                args: e.args.clone(),
                after: e.after.as_ref().map(|a| a.trim_end().to_string()),
                generated: false,
            })
            .collect();
    }
    let mut args = Map::new();
    for p in f.params.iter().filter(|p| p.required) {
        let value = p
            .example
            .clone()
            .or_else(|| p.default_value().cloned())
            .unwrap_or_else(|| placeholder(&p.name, &p.type_name()));
        match wrapper_of(f, p.location) {
            Some(w) => {
                let inner = args.entry(w.to_string()).or_insert_with(|| json!({}));
                if let Value::Object(o) = inner {
                    o.insert(p.name.clone(), value);
                }
            }
            None => {
                args.insert(p.name.clone(), value);
            }
        }
    }
    let args = Value::Object(args);
    vec![ExampleView {
        title: "Minimal call".into(),
        code: lua::block(&args, 0, true),
        args,
        after: Some("dump(result)".into()),
        generated: true,
    }]
}

fn placeholder(name: &str, ty: &str) -> Value {
    match ty {
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        t if t.starts_with("array") => json!([]),
        "object" => json!({}),
        _ => json!(format!("example_{name}")),
    }
}

/// The LuaCATS type of a schema fragment.
pub fn lua_type(schema: &Value) -> String {
    if let Some(Value::Array(vals)) = schema.get("enum")
        && !vals.is_empty()
        && vals.iter().all(Value::is_string)
    {
        return vals
            .iter()
            .map(|v| lua::quote(v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("|");
    }
    let one = |t: &str, s: &Value| -> String {
        match t {
            "string" => "string".into(),
            "integer" => "integer".into(),
            "number" => "number".into(),
            "boolean" => "boolean".into(),
            "object" => "table".into(),
            "null" => "nil".into(),
            "array" => match s.get("items") {
                Some(items) => {
                    let inner = lua_type(items);
                    if inner.contains('|') {
                        format!("({inner})[]")
                    } else {
                        format!("{inner}[]")
                    }
                }
                None => "any[]".into(),
            },
            _ => "any".into(),
        }
    };
    match schema.get("type") {
        Some(Value::String(t)) => one(t, schema),
        Some(Value::Array(ts)) => {
            let mut names: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| one(t, schema))
                .collect();
            names.dedup();
            names.join("|")
        }
        _ => {
            for key in ["oneOf", "anyOf"] {
                if let Some(Value::Array(alts)) = schema.get(key) {
                    let mut names: Vec<String> = Vec::new();
                    for a in alts {
                        let t = lua_type(a);
                        if !names.contains(&t) {
                            names.push(t);
                        }
                    }
                    return names.join("|");
                }
            }
            "any".into()
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classes for a function's argument table: every parameter flat (always accepted), the wrapper
/// objects, kosmo options, and one class per parameter with documented object fields.
fn lua_classes(
    m: &Manifest,
    name: &str,
    f: &Function,
    schema: &Value,
    args_class: &str,
) -> Vec<LuaClass> {
    let mut classes = Vec::new();
    let mut args = LuaClass {
        name: args_class.to_string(),
        fields: Vec::new(),
    };
    let mut wrapper_classes: IndexMap<&'static str, LuaClass> = IndexMap::new();
    let props = schema.get("properties").and_then(Value::as_object);
    for p in &f.params {
        let s = props
            .and_then(|ps| ps.get(&p.name))
            .cloned()
            .unwrap_or_else(|| Value::Object(p.schema.clone()));
        let mut ty = lua_type(&s);
        let sub = format!("{}.{name}.{}", m.name, p.name);
        if let Some(c) = object_class(&s, &sub) {
            // Swap the generic table in the union for the class (`string|x.system[]`).
            let (generic, named) = if s.get("properties").is_some() {
                ("table", sub.clone())
            } else {
                ("table[]", format!("{sub}[]"))
            };
            ty = ty
                .split('|')
                .map(|t| if t == generic { named.as_str() } else { t })
                .collect::<Vec<_>>()
                .join("|");
            classes.push(c);
        }
        let field = LuaField {
            name: p.name.clone(),
            r#type: ty,
            optional: !p.required,
            description: one_line(&p.description),
        };
        if let Some(w) = wrapper_of(f, p.location) {
            wrapper_classes
                .entry(w)
                .or_insert_with(|| LuaClass {
                    name: format!("{}.{name}.{w}", m.name),
                    fields: Vec::new(),
                })
                .fields
                .push(field.clone());
            // Flat arguments are accepted too, so the field is optional at the top level.
            args.fields.push(LuaField {
                optional: true,
                ..field
            });
        } else {
            args.fields.push(field);
        }
    }
    for (w, c) in &wrapper_classes {
        args.fields.push(LuaField {
            name: (*w).to_string(),
            r#type: c.name.clone(),
            optional: true,
            description: format!("The `{w}` wrapper; its fields may also be given flat."),
        });
    }
    if let Some(ps) = props {
        let own: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
        for (k, s) in ps {
            if !own.contains(&k.as_str()) {
                args.fields.push(LuaField {
                    name: k.clone(),
                    r#type: lua_type(s),
                    optional: true,
                    description: one_line(&str_of(s, "description")),
                });
            }
        }
    }
    if let Some(s) = &f.stream {
        args.fields.push(LuaField {
            name: "on_event".into(),
            r#type: "fun(event: table)".into(),
            optional: true,
            description: if s.param.is_empty() {
                "Called with each event.".into()
            } else {
                format!("Called with each event when `{} = true`.", s.param)
            },
        });
    }
    let mut out = vec![args];
    out.extend(wrapper_classes.into_values());
    out.extend(classes);
    out
}

/// A class for an object parameter with properties (or an array of such objects).
fn object_class(schema: &Value, name: &str) -> Option<LuaClass> {
    let target = if schema.get("properties").is_some() {
        schema
    } else {
        schema
            .get("items")
            .filter(|i| i.get("properties").is_some())?
    };
    let required = required_names(target);
    let props = target.get("properties")?.as_object()?;
    Some(LuaClass {
        name: name.to_string(),
        fields: props
            .iter()
            .map(|(k, s)| LuaField {
                name: k.clone(),
                r#type: lua_type(s),
                optional: !required.contains(k),
                description: one_line(&str_of(s, "description")),
            })
            .collect(),
    })
}

/// A sentence on what an integration's `retry:` block declares beyond the defaults, for the
/// errors page (the defaults themselves are described there once).
fn retry_note(m: &Manifest) -> Option<String> {
    let r = &m.retry;
    let list = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if let Some(statuses) = &r.statuses {
        parts.push(format!("retries statuses {}", list(statuses)));
    }
    if r.refused_statuses != [408, 429] {
        parts.push(format!(
            "treats {} as refused before any work (so writes are retried on them too)",
            list(&r.refused_statuses)
        ));
    }
    for rule in &r.rate_limited {
        parts.push(match &rule.equals {
            Some(v) => format!(
                "treats a {} with `{}: {v}` as a rate limit",
                rule.status, rule.header
            ),
            None => format!(
                "treats a {} with a `{}` header as a rate limit",
                rule.status, rule.header
            ),
        });
    }
    if !r.reset_headers.is_empty() {
        let names: Vec<String> = r
            .reset_headers
            .iter()
            .map(|h| format!("`{}`", h.header))
            .collect();
        parts.push(format!(
            "waits for a rate limit's reset time ({})",
            names.join(", ")
        ));
    }
    if let Some(h) = &m.errors.should_retry_header {
        parts.push(format!("obeys `{h}`"));
    }
    (!parts.is_empty()).then(|| format!("{}.", parts.join("; ")))
}
