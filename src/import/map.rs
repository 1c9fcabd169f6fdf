//! The mapping rules: one OpenAPI operation becomes one manifest function.
//!
//! Names from operation ids in snake_case (deduplicated in document order), groups from the
//! first tag, parameters (path, query, header; cookie reported) with their schemas, request
//! bodies by content type (JSON fields as `in: body`, form fields with `body: form`, multipart
//! parts as `in: form`, anything else as a raw body), read/write class from the method,
//! credentials from the security schemes, `base_url` from the first server, pagination where
//! the parameters and response shape are recognisable, streams where a response is
//! `text/event-stream`, examples and simulator answers from the spec's examples (or made from
//! the schemas). Everything the format cannot say goes to the [`Report`].

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_json::{Map, Value};

use super::emit::{Entry, Node};
use super::openapi::{Operation, Spec, escape};
use super::refs::Schemas;
use super::report::Report;
use super::sample::sample;

/// Schema keywords a parameter may carry at its top level (docs/manifest-format.md).
const TOP_LEVEL: [&str; 24] = [
    "type",
    "enum",
    "const",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "items",
    "properties",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "oneOf",
    "anyOf",
    "contentMediaType",
    "title",
];

/// Argument names kosmo itself adds to some functions.
const RESERVED_ARGS: [&str; 5] = ["fetch_all", "max_items", "max_pages", "save_to", "on_event"];

/// Header names OpenAPI says are ignored as parameters (the engine sets them).
const RESERVED_HEADERS: [&str; 3] = ["accept", "content-type", "authorization"];

/// What the caller chose.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    fn matches(pattern: &str, op: &Operation<'_>, name: &str) -> bool {
        let p = pattern.trim();
        if op.tags().iter().any(|t| t.eq_ignore_ascii_case(p)) {
            return true;
        }
        if op.operation_id() == Some(p) || name == p {
            return true;
        }
        p.starts_with('/') && glob(p, op.path)
    }

    pub fn keeps(&self, op: &Operation<'_>, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| Self::matches(p, op, name)))
            && !self.exclude.iter().any(|p| Self::matches(p, op, name))
    }
}

/// `*` matches any run of characters except `/`, `**` any run at all, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            Some('*') => (0..=t.len())
                .take_while(|i| *i == 0 || t[i - 1] != '/')
                .any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    if p.len() > 512 || t.len() > 4096 {
        return false;
    }
    go(&p, &t)
}

/// `listForRepo`, `repos/list-for-user`, `Get Pet By ID` → `list_for_repo`,
/// `repos_list_for_user`, `get_pet_by_id`: Lua-safe (`^[a-z][a-z0-9_]*$`), never empty.
pub fn snake(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() {
                let prev = i.checked_sub(1).map(|j| chars[j]);
                let next = chars.get(i + 1);
                let boundary = match prev {
                    Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                    Some(p) if p.is_ascii_uppercase() => {
                        next.is_some_and(|n| n.is_ascii_lowercase())
                    }
                    _ => false,
                };
                if boundary && !out.ends_with('_') && !out.is_empty() {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => "unnamed".into(),
        Some(c) if c.is_ascii_digit() => format!("n{out}"),
        _ => out,
    }
}

/// The first line (or sentence, when the line is long) of a text, for one-line summaries.
fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    let line = line.trim_start_matches('#').trim();
    if line.chars().count() <= 160 {
        return line.to_string();
    }
    match line.find(". ") {
        Some(i) if i < 160 => line[..=i].to_string(),
        _ => {
            let cut: String = line.chars().take(157).collect();
            format!("{cut}...")
        }
    }
}

fn s(text: &str) -> Node {
    Node::str(text)
}

/// The whole manifest as a node, and the function names, in order.
pub struct Built {
    pub root: Node,
    pub name: String,
    pub functions: Vec<String>,
}

pub struct Mapper<'a> {
    spec: &'a Spec,
    schemas: Schemas<'a>,
    report: Report,
    name: String,
    /// Credential name by security scheme name.
    credentials: Vec<(String, String, Node)>,
    /// Mapped header-parameter credential (no security schemes): header name, credential name.
    header_credentials: Vec<(String, String)>,
    examples: HashMap<String, Rc<Node>>,
    /// Component parameters already mapped: their argument name and node.
    shared_params: HashMap<String, (String, Rc<Node>)>,
    query_styles: (usize, usize),
    /// A urlencoded body has an array field.
    form_arrays: bool,
}

impl<'a> Mapper<'a> {
    pub fn new(spec: &'a Spec, name: String) -> Self {
        Mapper {
            spec,
            schemas: Schemas::new(spec),
            report: Report::default(),
            name,
            credentials: Vec::new(),
            header_credentials: Vec::new(),
            examples: HashMap::new(),
            shared_params: HashMap::new(),
            query_styles: (0, 0),
            form_arrays: false,
        }
    }

    pub fn into_report(self) -> Report {
        self.report
    }

    pub fn report(&mut self) -> &mut Report {
        &mut self.report
    }

    pub fn build(&mut self, filter: &Filter) -> Built {
        let spec = self.spec;
        let root_obj = spec.root();
        for (k, _) in root_obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.report.note(
                "extension",
                format!("top-level extension `{k}` is not kept"),
                "#",
            );
        }
        if root_obj
            .get("webhooks")
            .is_some_and(|w| w.as_object().is_some_and(|m| !m.is_empty()))
        {
            self.report.note(
                "webhooks",
                "webhooks (requests the API sends to you) are not functions; they are left out",
                "#/webhooks",
            );
        }
        let title = spec.info("title").unwrap_or("").trim().to_string();
        let mut root = Node::map();
        root.push("name", s(&self.name));
        root.push(
            "label",
            s(if title.is_empty() { &self.name } else { &title }),
        );
        let summary = spec
            .info("summary")
            .map(first_line)
            .filter(|l| !l.is_empty())
            .or_else(|| {
                spec.info("description")
                    .map(first_line)
                    .filter(|l| !l.is_empty())
            })
            .unwrap_or_else(|| {
                format!(
                    "{} (imported from its OpenAPI description).",
                    if title.is_empty() { &self.name } else { &title }
                )
            });
        root.push("summary", s(&summary));
        if let Some(d) = spec
            .info("description")
            .filter(|d| !d.trim().is_empty() && d.trim() != summary)
        {
            root.push("description", s(d.trim_end()));
        }
        root.push("category", s("imported"));
        if let Some(url) = root_obj
            .get("externalDocs")
            .and_then(|d| d.get("url"))
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            root.push("docs_url", s(url));
        }
        root.push("base_url", s(&self.base_url()));
        let credentials = self.credentials_node();
        let mut account = Node::map();
        account.push(
            "base_url_env",
            s(&format!("{}_BASE_URL", self.name.to_ascii_uppercase())),
        );
        root.push("account", account);

        // Functions first (they decide groups and query styles), then the sections before them.
        let mut functions = Node::map();
        let mut names: Vec<String> = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        let mut groups: Vec<(String, String)> = Vec::new();
        let mut later: Vec<(String, Node)> = Vec::new();
        for op in spec.operations() {
            let base = match op.operation_id() {
                Some(id) if !id.trim().is_empty() => snake(id),
                _ => snake(&format!(
                    "{} {}",
                    op.method,
                    op.path.replace(['{', '}'], "")
                )),
            };
            if !filter.keeps(&op, &base) {
                continue;
            }
            if matches!(op.method, "head" | "options" | "trace") {
                self.report.note(
                    "method_unsupported",
                    format!("{} operations are not callable through the manifest format (GET, POST, PUT, PATCH, DELETE); left out", op.method.to_ascii_uppercase()),
                    op.label(),
                );
                continue;
            }
            let mut fname = base.clone();
            let mut n = 2;
            while taken.contains(&fname) {
                fname = format!("{base}_{n}");
                n += 1;
            }
            if fname != base {
                self.report.note(
                    "duplicate_name",
                    "two operations map to one function name; the later one gets a numeric suffix",
                    format!("{} -> {fname}", op.pointer()),
                );
            }
            taken.insert(fname.clone());
            let tag = op.tags().first().map(|t| t.to_string());
            let group = match &tag {
                Some(t) => {
                    let id = snake(t);
                    if !groups.iter().any(|(g, _)| *g == id) {
                        groups.push((id.clone(), t.clone()));
                    }
                    id
                }
                None => {
                    if !groups.iter().any(|(g, _)| g == "other") {
                        groups.push(("other".into(), "Other".into()));
                    }
                    "other".into()
                }
            };
            let f = self.function(&op, &group);
            if op.path.contains('?') {
                // After the others: the simulator routes a method and path to the first function
                // declaring it, and the variant without the fixed query accepts both requests.
                later.push((fname, f));
            } else {
                functions.push(fname.clone(), f);
                names.push(fname);
            }
        }
        for (fname, f) in later {
            functions.push(fname.clone(), f);
            names.push(fname);
        }
        // A default full name (<integration>_<fn>) must not be another function's Lua name.
        if let Node::Map(entries) = &mut functions {
            let lua: HashSet<String> = names.iter().cloned().collect();
            for e in entries.iter_mut() {
                let full = format!("{}_{}", self.name, e.key);
                if lua.contains(&full)
                    && let Node::Map(fields) = &mut e.value
                {
                    fields.insert(
                        0,
                        Entry {
                            key: "full_name".into(),
                            value: s(&format!("{full}_fn")),
                            comment: None,
                        },
                    );
                }
            }
        }
        let (repeat, comma) = self.query_styles;
        if repeat + comma > 0 {
            let style = if comma > repeat { "comma" } else { "repeat" };
            if repeat > 0 && comma > 0 {
                self.report.note(
                    "query_array_style",
                    format!("array query parameters use both `explode: true` ({repeat}) and `explode: false` ({comma}); the manifest writes every array the majority way (`query_arrays: {style}`)"),
                    "",
                );
            }
            root.push("query_arrays", s(style));
        }
        if self.form_arrays {
            // OpenAPI's default for arrays in urlencoded bodies: `k=a&k=b`.
            root.push("form_arrays", s("repeat"));
        }
        root.push("credentials", credentials);
        let mut gs = Vec::new();
        for (id, title) in &groups {
            let mut g = Node::map();
            g.push("id", s(id));
            g.push("title", s(title));
            if let Some(d) = spec.tag_description(title).filter(|d| !d.trim().is_empty()) {
                g.push("description", s(d.trim_end()));
            }
            gs.push(g);
        }
        root.push("groups", Node::Seq(gs));
        root.push("functions", functions);
        Built {
            root,
            name: self.name.clone(),
            functions: names,
        }
    }

    fn base_url(&mut self) -> String {
        let servers = self.spec.root().get("servers").and_then(Value::as_array);
        let Some(first) = servers.and_then(|s| s.first()) else {
            self.report.note(
                "no_server",
                "the spec names no server; base_url is a placeholder (https://api.example.invalid): set the real one, or the <NAME>_BASE_URL variable",
                "#/servers",
            );
            return "https://api.example.invalid".into();
        };
        if servers.is_some_and(|s| s.len() > 1) {
            self.report.note(
                "more_servers",
                "only the first server is the base_url; an account's base URL (or <NAME>_BASE_URL) selects another",
                "#/servers",
            );
        }
        let mut url = first
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(Value::Object(vars)) = first.get("variables") {
            for (k, v) in vars {
                let d = v.get("default").and_then(Value::as_str).unwrap_or("");
                url = url.replace(&format!("{{{k}}}"), d);
            }
            self.report.note(
                "server_variables",
                "server variables are replaced by their defaults",
                "#/servers/0/variables",
            );
        }
        let url = url.trim_end_matches('/').to_string();
        if url.starts_with("https://") || url.starts_with("http://") {
            if url.contains(char::is_whitespace) || url.len() <= "https://".len() {
                self.report.note(
                    "no_server",
                    "the first server URL is not usable; base_url is a placeholder",
                    "#/servers/0",
                );
                return "https://api.example.invalid".into();
            }
            url
        } else {
            self.report.note(
                "relative_server",
                format!("the server URL `{url}` is relative; base_url puts it under https://api.example.invalid: set the real host"),
                "#/servers/0",
            );
            format!(
                "https://api.example.invalid{}",
                if url.starts_with('/') {
                    url.clone()
                } else {
                    format!("/{url}")
                }
            )
            .trim_end_matches('/')
            .to_string()
        }
    }

    /// `credentials:` from the security schemes (or, without any, from header parameters that
    /// carry a key).
    fn credentials_node(&mut self) -> Node {
        let mut out = Node::map();
        let upper = self.name.to_ascii_uppercase();
        let spec = self.spec;
        if let Some(schemes) = spec.components("securitySchemes") {
            for (scheme_name, scheme) in schemes {
                let place = format!("#/components/securitySchemes/{}", escape(scheme_name));
                let Some((scheme, _)) = self.schemas.deref(scheme, &place, &mut self.report) else {
                    continue;
                };
                let cred = snake(scheme_name);
                let ty = scheme.get("type").and_then(Value::as_str).unwrap_or("");
                let desc = scheme
                    .get("description")
                    .and_then(Value::as_str)
                    .map(first_line);
                let mut c = Node::map();
                let http = scheme
                    .get("scheme")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase);
                let kind_label = match (ty, http.as_deref()) {
                    ("apiKey", _) => "API key",
                    ("http", Some("bearer")) => "Bearer token",
                    ("http", Some("basic")) => "User and password",
                    ("oauth2" | "openIdConnect", _) => "OAuth access token",
                    _ => scheme_name.as_str(),
                };
                // The scheme's own words when short, else what kind of secret it is.
                let label = desc
                    .clone()
                    .filter(|d| d.len() <= 60)
                    .unwrap_or_else(|| kind_label.to_string());
                c.push("label", s(&label));
                let env = format!("{upper}_{}", cred.to_ascii_uppercase());
                let mut note = None;
                match ty {
                    "apiKey" => {
                        let loc = scheme.get("in").and_then(Value::as_str).unwrap_or("");
                        let pname = scheme.get("name").and_then(Value::as_str).unwrap_or("");
                        match loc {
                            "header"
                                if !pname.is_empty()
                                    && pname
                                        .chars()
                                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-') =>
                            {
                                c.push("kind", s("header"));
                                c.push("header", s(&pname.to_ascii_lowercase()));
                            }
                            "query" if !pname.is_empty() => {
                                c.push("kind", s("query"));
                                c.push("query_param", s(pname));
                            }
                            _ => {
                                self.report.note(
                                    "security_unsupported",
                                    format!("an API key in `{loc}` (`{pname}`) cannot be sent by the manifest format (header or query only); the scheme is left out"),
                                    place,
                                );
                                continue;
                            }
                        }
                    }
                    "http" => match scheme
                        .get("scheme")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .as_deref()
                    {
                        Some("bearer") => c.push("kind", s("bearer")),
                        Some("basic") => c.push("kind", s("basic")),
                        other => {
                            self.report.note(
                                "security_unsupported",
                                format!("HTTP `{}` authentication is not supported (bearer and basic are); the scheme is left out", other.unwrap_or("?")),
                                place,
                            );
                            continue;
                        }
                    },
                    "oauth2" | "openIdConnect" => {
                        c.push("kind", s("bearer"));
                        note = Some(format!(
                            "{ty}: give an access token obtained elsewhere; kosmo sends it as a bearer token and runs no OAuth flow"
                        ));
                        self.report.note(
                            "oauth2_as_bearer",
                            format!("{ty} is mapped to a bearer token: the user supplies an access token, kosmo runs no OAuth flow and checks no scopes"),
                            place,
                        );
                    }
                    other => {
                        self.report.note(
                            "security_unsupported",
                            format!("security scheme type `{other}` is not supported; the scheme is left out"),
                            place,
                        );
                        continue;
                    }
                }
                c.push("env", s(&env));
                c.push("placeholder", s("kosmo-offline-placeholder"));
                let mut hint = format!(
                    "Set {env}, or run `kosmo integrations:configure {} --set {cred}=-` (reads it from standard input).",
                    self.name
                );
                if let Some(d) = &desc {
                    hint = format!("{d} {hint}");
                }
                c.push("hint", s(&hint));
                match note {
                    Some(n) => out.push_commented(cred.clone(), c, n),
                    None => out.push(cred.clone(), c),
                }
                self.credentials
                    .push((scheme_name.clone(), cred, Node::map()));
            }
        }
        if self.credentials.is_empty() {
            // No scheme: a key passed as a header parameter (`x-api-key`) is a credential.
            let mut seen = HashSet::new();
            for op in spec.operations() {
                for (p, _) in self.raw_params(&op) {
                    let (Some("header"), Some(name)) = (
                        p.get("in").and_then(Value::as_str),
                        p.get("name").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let lower = name.to_ascii_lowercase();
                    if matches!(
                        lower.as_str(),
                        "x-api-key" | "api-key" | "apikey" | "x-api-token" | "x-auth-token"
                    ) && seen.insert(lower.clone())
                    {
                        let cred = if self.header_credentials.is_empty() {
                            "api_key".to_string()
                        } else {
                            snake(&lower)
                        };
                        let env = format!("{upper}_{}", cred.to_ascii_uppercase());
                        let mut c = Node::map();
                        c.push("label", s("API key"));
                        c.push("header", s(&lower));
                        c.push("env", s(&env));
                        c.push("placeholder", s("kosmo-offline-placeholder"));
                        c.push("hint", s(&format!("Set {env}, or run `kosmo integrations:configure {} --set {cred}=-`.", self.name)));
                        out.push_commented(cred.clone(), c, format!("Guessed: the spec declares no security scheme but passes `{name}` as a header parameter."));
                        self.report.note(
                            "credential_from_header",
                            format!("the spec has no security schemes; the `{name}` header parameter is mapped to the credential `{cred}` instead of an argument"),
                            op.label(),
                        );
                        self.header_credentials.push((lower, cred));
                    }
                }
            }
        }
        if self.credentials.is_empty() && self.header_credentials.is_empty() {
            self.report.note(
                "no_credentials",
                "the spec declares no security scheme: the manifest has no credentials (add one by hand if the API needs a key)",
                "#/components/securitySchemes",
            );
        }
        out
    }

    /// Path-level and operation parameters (operation wins), references followed.
    fn raw_params(&mut self, op: &Operation<'a>) -> Vec<(&'a Value, Option<&'a str>)> {
        let mut out: Vec<(&'a Value, Option<&'a str>)> = Vec::new();
        let place = op.pointer();
        let mut add = |this: &mut Self, list: Option<&'a Value>| {
            for p in list.and_then(Value::as_array).into_iter().flatten() {
                let reference = p.get("$ref").and_then(Value::as_str);
                let Some((p, _)) = this.schemas.deref(p, &place, &mut this.report) else {
                    continue;
                };
                let key = (
                    p.get("name").and_then(Value::as_str),
                    p.get("in").and_then(Value::as_str),
                );
                out.retain(|(q, _)| {
                    (
                        q.get("name").and_then(Value::as_str),
                        q.get("in").and_then(Value::as_str),
                    ) != key
                });
                out.push((p, reference));
            }
        };
        // `op.item` / `op.op` live as long as the spec.
        let item: &'a Map<String, Value> = op.item;
        let o: &'a Map<String, Value> = op.op;
        add(self, item.get("parameters"));
        add(self, o.get("parameters"));
        out
    }

    /// Which credential (and auth mode) an operation uses.
    fn security(
        &mut self,
        op: &Operation<'a>,
        header_params: &[String],
    ) -> (Option<String>, Option<&'static str>) {
        if !self.header_credentials.is_empty() {
            let found = self
                .header_credentials
                .iter()
                .find(|(h, _)| header_params.contains(h))
                .map(|(_, c)| c.clone());
            return match found {
                Some(c) => (Some(c), None),
                None => (None, Some("none")),
            };
        }
        if self.credentials.is_empty() {
            return (None, None);
        }
        let reqs = op
            .op
            .get("security")
            .or_else(|| self.spec.root().get("security"));
        let Some(Value::Array(reqs)) = reqs else {
            self.report.note(
                "no_security_requirement",
                "the spec declares security schemes but no requirement for this operation; the first credential is sent when configured (auth: optional)",
                op.label(),
            );
            return (Some(self.credentials[0].1.clone()), Some("optional"));
        };
        if reqs.is_empty() {
            return (None, Some("none"));
        }
        let anonymous = reqs
            .iter()
            .any(|r| r.as_object().is_some_and(Map::is_empty));
        let mut chosen = None;
        for r in reqs {
            let Some(obj) = r.as_object() else { continue };
            if obj.len() > 1 {
                self.report.note(
                    "combined_security",
                    "a requirement needing several schemes at once is not supported; only its first mapped scheme is sent",
                    op.label(),
                );
            }
            if let Some(c) = obj.keys().find_map(|k| {
                self.credentials
                    .iter()
                    .find(|(n, _, _)| n == k)
                    .map(|(_, c, _)| c.clone())
            }) {
                chosen = Some(c);
                break;
            }
        }
        if reqs
            .iter()
            .filter(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            .count()
            > 1
        {
            self.report.note(
                "alternative_security",
                "of several alternative security requirements only the first mapped one is used (another credential needs a copy of the function)",
                op.label(),
            );
        }
        match chosen {
            Some(c) if anonymous => (Some(c), Some("optional")),
            Some(c) => (Some(c), None),
            None if anonymous => (None, Some("none")),
            None => {
                self.report.note(
                    "security_unsupported",
                    "none of the operation's security schemes could be mapped; the function sends no credential",
                    op.label(),
                );
                (None, Some("none"))
            }
        }
    }

    fn function(&mut self, op: &Operation<'a>, group: &str) -> Node {
        let mut f = Node::map();
        let method = op.method.to_ascii_uppercase();
        let read = method == "GET";
        f.push("group", s(group));
        f.push("class", s(if read { "read" } else { "write" }));
        if matches!(method.as_str(), "PUT" | "DELETE") {
            f.push("idempotent", Node::Scalar(Value::Bool(true)));
        }
        let summary = op
            .str_field("summary")
            .map(first_line)
            .filter(|l| !l.is_empty())
            .or_else(|| {
                op.str_field("description")
                    .map(first_line)
                    .filter(|l| !l.is_empty())
            })
            .unwrap_or_else(|| format!("{method} {}", op.path));
        f.push("summary", s(&summary));
        if let Some(d) = op
            .str_field("description")
            .map(str::trim_end)
            .filter(|d| !d.trim().is_empty() && first_line(d) != *d)
        {
            f.push("description", s(d));
        } else if let Some(d) = op
            .str_field("description")
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != summary)
        {
            f.push("description", s(d));
        }
        if op.op.get("deprecated") == Some(&Value::Bool(true)) {
            f.push("deprecated", s("Deprecated in the OpenAPI description."));
        }
        for (k, _) in op.op.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.report.note(
                "extension",
                format!("operation extension `{k}` is not kept"),
                op.label(),
            );
        }
        for (key, code, what) in [
            (
                "callbacks",
                "callbacks",
                "callbacks (requests the API makes back to you) are not mapped",
            ),
            (
                "servers",
                "operation_servers",
                "a server of its own for one operation is not mapped; the manifest's base_url applies",
            ),
        ] {
            if op.op.get(key).is_some_and(|v| !v.is_null()) {
                self.report.note(code, what, op.label());
            }
        }

        // Parameters.
        let mut params: Vec<Node> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut path = op.path.to_string();
        let mut header_params = Vec::new();
        let mut required_args: Vec<(String, Value)> = Vec::new();
        let mut query_names: Vec<String> = Vec::new();
        let mut example_missing = false;
        let raw = self.raw_params(op);
        for (p, reference) in raw {
            let Some(pname) = p.get("name").and_then(Value::as_str) else {
                self.report.note(
                    "invalid_parameter",
                    "a parameter without a name is left out",
                    op.label(),
                );
                continue;
            };
            let loc = p.get("in").and_then(Value::as_str).unwrap_or("");
            let lower = pname.to_ascii_lowercase();
            match loc {
                "path" | "query" | "header" => {}
                "cookie" => {
                    self.report.note(
                        "cookie_parameter",
                        "cookie parameters cannot be sent by the manifest format; left out",
                        format!("{} ({pname})", op.label()),
                    );
                    continue;
                }
                other => {
                    self.report.note(
                        "invalid_parameter",
                        format!("parameter location `{other}` is unknown; left out"),
                        op.label(),
                    );
                    continue;
                }
            }
            if loc == "header" {
                header_params.push(lower.clone());
                if self.header_credentials.iter().any(|(h, _)| *h == lower) {
                    continue;
                }
                if RESERVED_HEADERS.contains(&lower.as_str()) {
                    self.report.note(
                        "reserved_header",
                        format!("the `{pname}` header parameter is ignored (OpenAPI says so; kosmo sets it)"),
                        op.label(),
                    );
                    continue;
                }
            }
            for key in ["allowReserved", "allowEmptyValue"] {
                if p.get(key) == Some(&Value::Bool(true)) {
                    self.report.note(
                        "parameter_serialization",
                        format!("`{key}` is not mapped; values are encoded as usual"),
                        format!("{} ({pname})", op.label()),
                    );
                }
            }
            let style = p.get("style").and_then(Value::as_str);
            if let Some(st) = style.filter(|st| !matches!(*st, "form" | "simple" | "deepObject")) {
                self.report.note(
                    "parameter_serialization",
                    format!(
                        "`style: {st}` is not supported; the value is sent in the default style"
                    ),
                    format!("{} ({pname})", op.label()),
                );
            }
            let mut lua = snake(pname);
            if RESERVED_ARGS.contains(&lua.as_str()) || names.contains(&lua) {
                lua = format!("{lua}_{loc}");
            }
            while names.contains(&lua) {
                lua.push('_');
            }
            names.insert(lua.clone());
            if loc == "path" {
                path = path.replace(&format!("{{{pname}}}"), &format!("{{{lua}}}"));
            }
            let schema_val: Option<&'a Value> = match p.get("schema") {
                Some(sv) => Some(sv),
                None => {
                    let content = p.get("content").and_then(Value::as_object);
                    if content.is_some() {
                        self.report.note(
                            "parameter_content",
                            "a parameter described by `content` (a serialized document) is sent as its schema's value",
                            format!("{} ({pname})", op.label()),
                        );
                    }
                    content
                        .and_then(|c| c.values().next())
                        .and_then(|m| m.get("schema"))
                }
            };
            let required = loc == "path" || p.get("required") == Some(&Value::Bool(true));
            if loc == "query"
                && style != Some("deepObject")
                && schema_val.is_some_and(|sv| {
                    self.resolve(sv).get("type").and_then(Value::as_str) == Some("object")
                })
            {
                self.report.note(
                    "parameter_serialization",
                    "an object query parameter in `form` style (its properties as query parameters of their own) is sent as `name[key]=value` (deepObject style)",
                    format!("{} ({pname})", op.label()),
                );
            }
            if loc == "query" {
                query_names.push(lua.clone());
                if let Some(sv) = schema_val
                    && self.is_array(sv)
                {
                    let explode = p
                        .get("explode")
                        .and_then(Value::as_bool)
                        .unwrap_or(style.is_none_or(|st| st == "form"));
                    if explode {
                        self.query_styles.0 += 1
                    } else {
                        self.query_styles.1 += 1
                    }
                }
            }
            let example = param_example(self, p);
            let mut node = Node::map();
            node.push("name", s(&lua));
            node.push("in", s(loc));
            let desc = p
                .get("description")
                .and_then(Value::as_str)
                .map(str::trim_end)
                .unwrap_or("");
            let place = format!("{} ({pname})", op.pointer());
            let schema_node =
                schema_val.map(|sv| self.schemas.convert(sv, &place, &mut self.report));
            let mut node = self.param_node(
                node,
                required,
                desc,
                p.get("deprecated") == Some(&Value::Bool(true)),
                schema_node,
                example.clone(),
                &place,
            );
            if lua != pname {
                node.push("wire_name", s(pname));
            }
            if node.get("send_default").is_none() && required {
                let value = example.clone().or_else(|| {
                    schema_val
                        .map(|sv| sample(self.spec, sv))
                        .filter(|v| !v.is_null())
                });
                match value {
                    Some(v) => required_args.push((lua.clone(), v)),
                    None => example_missing = true,
                }
            }
            // A component parameter (`#/components/parameters/owner`) is written once and
            // aliased, as long as it maps to the same argument name.
            match reference {
                Some(r) => {
                    let shared = match self.shared_params.get(r) {
                        Some((name, rc)) if *name == lua => rc.clone(),
                        Some(_) => {
                            params.push(node);
                            continue;
                        }
                        None => {
                            let rc = Rc::new(node);
                            self.shared_params
                                .insert(r.to_string(), (lua.clone(), rc.clone()));
                            rc
                        }
                    };
                    let anchor = self.schemas.anchor_for(r);
                    params.push(Node::Shared(anchor, shared));
                }
                None => params.push(node),
            }
        }
        // A placeholder the spec declares no parameter for: a required string argument.
        let declared: Vec<String> = crate::manifest::path_placeholders(&path);
        for ph in declared {
            let bare = ph.trim_start_matches('+').to_string();
            if names.contains(&bare) {
                continue;
            }
            self.report.note(
                "undeclared_path_parameter",
                "a path placeholder has no parameter in the spec; it becomes a required string argument",
                format!("{} ({bare})", op.label()),
            );
            let mut lua = snake(&bare);
            while names.contains(&lua) {
                lua.push('_');
            }
            names.insert(lua.clone());
            path = path.replace(&format!("{{{bare}}}"), &format!("{{{lua}}}"));
            let mut node = Node::map();
            node.push("name", s(&lua));
            node.push("in", s("path"));
            node.push("required", Node::Scalar(Value::Bool(true)));
            node.push("type", s("string"));
            if lua != bare {
                node.push("wire_name", s(&bare));
            }
            required_args.push((lua, Value::String("example".into())));
            params.push(node);
        }
        // A fixed query string in the path key (`/v1/messages?beta=true`, which OpenAPI does
        // not allow but specs carry): a query parameter that always sends its value.
        if let Some((bare, query)) = path.clone().split_once('?') {
            path = bare.to_string();
            self.report.note(
                "query_in_path",
                "the path carries a fixed query string; it becomes a query parameter that always sends its value (const, send_default)",
                op.label(),
            );
            for pair in query.split('&').filter(|x| !x.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = percent_encoding::percent_decode_str(k)
                    .decode_utf8_lossy()
                    .into_owned();
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned();
                let mut lua = snake(&k);
                while names.contains(&lua) {
                    lua.push('_');
                }
                names.insert(lua.clone());
                let mut node = Node::map();
                node.push("name", s(&lua));
                node.push("in", s("query"));
                node.push(
                    "description",
                    s(&format!(
                        "Fixed by the spec's path (`?{pair}`): always sent."
                    )),
                );
                node.push("send_default", Node::Scalar(Value::Bool(true)));
                node.push("type", s("string"));
                node.push("const", s(&v));
                node.push("default", s(&v));
                if lua != k {
                    node.push("wire_name", s(&k));
                }
                params.push(node);
            }
        }

        // Request body.
        let mut body_kind: Option<&'static str> = None;
        let mut content_type: Option<String> = None;
        let mut passthrough = false;
        if let Some(rb) = op.op.get("requestBody") {
            let place = format!("{}/requestBody", op.pointer());
            if let Some((rb, _)) = self.schemas.deref(rb, &place, &mut self.report) {
                if matches!(method.as_str(), "GET" | "DELETE") {
                    self.report.note(
                        "body_on_get_or_delete",
                        format!("a request body on {method} cannot be sent by the manifest format; the body is left out"),
                        op.label(),
                    );
                } else if let Some(content) = rb
                    .get("content")
                    .and_then(Value::as_object)
                    .filter(|c| !c.is_empty())
                {
                    let body_required = rb.get("required") == Some(&Value::Bool(true));
                    let (media, kind) = pick_request_media(content);
                    for other in content.keys().filter(|k| **k != media) {
                        self.report.note(
                            "alternative_content_type",
                            format!("the body is also accepted as `{other}`; the manifest sends `{media}` only"),
                            op.label(),
                        );
                    }
                    let Some(mt) = content.get(&media) else {
                        return f;
                    };
                    // A wildcard (`*/*`, `image/*`) says any bytes: send them as such.
                    let media = if media.contains('*') {
                        "application/octet-stream".to_string()
                    } else {
                        media
                    };
                    if mt
                        .get("encoding")
                        .is_some_and(|e| e.as_object().is_some_and(|m| !m.is_empty()))
                    {
                        self.report.note(
                            "multipart_encoding",
                            "per-part `encoding` (content types, headers of parts) is not mapped",
                            op.label(),
                        );
                    }
                    let schema = mt.get("schema");
                    match kind {
                        "raw" => {
                            body_kind = Some("raw");
                            content_type = Some(media.clone());
                            let mut node = Node::map();
                            let lua = if names.contains("body") {
                                "body_raw".to_string()
                            } else {
                                "body".to_string()
                            };
                            node.push("name", s(&lua));
                            node.push("in", s("body"));
                            node.push("raw", Node::Scalar(Value::Bool(true)));
                            if body_required {
                                node.push("required", Node::Scalar(Value::Bool(true)));
                                required_args.push((lua.clone(), Value::String("example".into())));
                            }
                            let d = rb.get("description").and_then(Value::as_str).unwrap_or("");
                            node.push("description", s(&format!("{}The whole `{media}` body: a string, or {{base64 = \"...\"}} for bytes.", if d.trim().is_empty() { String::new() } else { format!("{} ", first_line(d)) })));
                            names.insert(lua);
                            params.push(node);
                        }
                        _ => {
                            let loc = if kind == "multipart" { "form" } else { "body" };
                            body_kind = match kind {
                                "form" => Some("form"),
                                "multipart" => Some("multipart"),
                                _ => None,
                            };
                            let props = schema
                                .map(|sc| self.body_properties(sc, op))
                                .unwrap_or_default();
                            match props {
                                BodyShape::Fields {
                                    fields,
                                    required,
                                    open,
                                } => {
                                    if open && kind == "json" {
                                        passthrough = true;
                                    } else if open {
                                        self.report.note("open_body", "extra body fields (additionalProperties) cannot be sent in form or multipart bodies", op.label());
                                    }
                                    for (prop, sv) in fields {
                                        if kind == "form" {
                                            let t = self
                                                .resolve(sv)
                                                .get("type")
                                                .and_then(Value::as_str);
                                            if t == Some("array") {
                                                self.form_arrays = true;
                                            } else if t == Some("object") {
                                                self.report.note(
                                                    "form_object",
                                                    "an object field of a urlencoded body is sent as `name[key]=value`, not as OpenAPI's default (its properties as fields of their own)",
                                                    format!("{} ({prop})", op.label()),
                                                );
                                            }
                                        }
                                        let mut lua = snake(&prop);
                                        if RESERVED_ARGS.contains(&lua.as_str())
                                            || names.contains(&lua)
                                        {
                                            lua = format!("{lua}_{loc}");
                                        }
                                        while names.contains(&lua) {
                                            lua.push('_');
                                        }
                                        names.insert(lua.clone());
                                        let req = required.contains(&prop);
                                        let mut node = Node::map();
                                        node.push("name", s(&lua));
                                        node.push("in", s(loc));
                                        let place = format!("{place} ({prop})");
                                        let desc = sv
                                            .get("description")
                                            .and_then(Value::as_str)
                                            .unwrap_or("")
                                            .to_string();
                                        let schema_node =
                                            self.schemas.convert(sv, &place, &mut self.report);
                                        let ex = sv.get("example").cloned();
                                        let dep = sv.get("deprecated") == Some(&Value::Bool(true));
                                        let mut node = self.param_node(
                                            node,
                                            req,
                                            desc.trim_end(),
                                            dep,
                                            Some(schema_node),
                                            ex.clone(),
                                            &place,
                                        );
                                        if lua != prop {
                                            node.push("wire_name", s(&prop));
                                        }
                                        if loc == "form"
                                            && matches!(node.get("format"), Some(Node::Scalar(Value::String(f))) if f == "binary")
                                            && let Node::Map(fields) = &mut node
                                        {
                                            // A file part: a local path, or {content | content_base64, filename}.
                                            fields.retain(|e| e.key != "type");
                                        }
                                        let file_part = loc == "form"
                                            && matches!(node.get("format"), Some(Node::Scalar(Value::String(f))) if f == "binary");
                                        if req && node.get("send_default").is_none() {
                                            let v = if file_part {
                                                Some(
                                                    serde_json::json!({"content": "example", "filename": "example.bin"}),
                                                )
                                            } else {
                                                ex.or_else(|| {
                                                    Some(sample(self.spec, sv))
                                                        .filter(|v| !v.is_null())
                                                })
                                            };
                                            match v {
                                                Some(v) => required_args.push((lua, v)),
                                                None => example_missing = true,
                                            }
                                        }
                                        params.push(node);
                                    }
                                }
                                BodyShape::Other => {
                                    if kind == "json" {
                                        body_kind = Some("raw");
                                        content_type = Some(media.clone());
                                        self.report.note(
                                            "body_not_object",
                                            "a JSON body that is not an object of fields (an array, a scalar, alternatives of different kinds) is sent raw: the caller passes the JSON text",
                                            op.label(),
                                        );
                                        let mut node = Node::map();
                                        node.push("name", s("body"));
                                        node.push("in", s("body"));
                                        node.push("raw", Node::Scalar(Value::Bool(true)));
                                        node.push("required", Node::Scalar(Value::Bool(true)));
                                        node.push("type", s("string"));
                                        node.push(
                                            "description",
                                            s("The whole JSON body, as JSON text."),
                                        );
                                        if let Some(sc) = schema {
                                            let v = sample(self.spec, sc);
                                            required_args.push((
                                                "body".into(),
                                                Value::String(v.to_string()),
                                            ));
                                        }
                                        params.push(node);
                                    } else {
                                        self.report.note("body_not_object", format!("a `{media}` body that is not an object of fields is left out"), op.label());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        let mut path_node = s(&path);
        let _ = &mut path_node;
        f.push("method", s(&method));
        f.push("path", path_node);
        let (cred, auth) = self.security(op, &header_params);
        if let Some(c) = cred {
            f.push("credential", s(&c));
        }
        if let Some(a) = auth {
            f.push("auth", s(a));
        }
        if let Some(b) = body_kind {
            f.push("body", s(b));
        }
        if let Some(ct) = content_type {
            f.push("content_type", s(&ct));
        }
        if passthrough {
            f.push_commented(
                "passthrough",
                Node::Scalar(Value::Bool(true)),
                "The body schema allows fields beyond the ones listed (additionalProperties).",
            );
        }

        // Response.
        let resp = self.success_response(op);
        let mut sim = Node::map();
        let mut pagination_comment = None;
        if let Some(r) = &resp {
            match r.kind {
                "json" => {}
                "sse" => {
                    let stream_param = raw_has_bool_stream(&params);
                    if r.json_too && stream_param {
                        f.push_commented("stream", {
                                let mut st = Node::map();
                                st.push("param", s("stream"));
                                st
                            }, "The API answers text/event-stream when `stream` is true; each event's data is collected (assemble: events by default). Declare a dialect and assembly rules to fold them into one value.");
                        self.report.note("stream_assembly", "a streamed response is collected as its list of events; the assembly into one value is for you to declare (docs/manifest-format.md#streams-dialects-and-assembly)", op.label());
                    } else {
                        f.push_commented(
                            "response",
                            s("sse"),
                            "The API answers text/event-stream.",
                        );
                        if r.json_too {
                            self.report.note("stream_switch", "the API answers JSON or text/event-stream but no boolean `stream` argument says which; the function always asks for the stream", op.label());
                        }
                    }
                }
                other => f.push("response", s(other)),
            }
            if r.kind == "json" || (r.kind == "sse" && r.json_too) {
                let (pagination, comment) = self.pagination(&query_names, r);
                if comment.is_some() {
                    self.report.note(
                            "pagination_unrecognised",
                            "the operation looks paged but its shape matches no pagination style; it is left out with a comment in the manifest",
                            op.label(),
                        );
                }
                if let Some(p) = pagination {
                    f.push("pagination", p);
                }
                pagination_comment = comment;
            }
            if r.status != 200 {
                sim.push("status", Node::Scalar(Value::from(r.status)));
            }
            if let Some(v) = r.example.clone() {
                sim.push("response", v);
            } else if r.kind == "binary" {
                sim.push("response", s("example bytes"));
            }
        }
        if !params.is_empty() {
            match pagination_comment {
                Some(c) => f.push_commented("params", Node::Seq(params), c),
                None => f.push("params", Node::Seq(params)),
            }
        } else if let Some(c) = pagination_comment {
            f.push_commented("params", Node::Seq(vec![]), c);
        }
        if !example_missing {
            let mut ex = Node::map();
            ex.push("title", s(&summary));
            let mut args = Node::map();
            for (k, v) in required_args {
                args.push(k, Node::from_json(&v));
            }
            ex.push("args", args);
            f.push("examples", Node::Seq(vec![ex]));
        }
        if !sim.is_empty_collection() {
            f.push("simulator", sim);
        }
        f
    }

    /// The param's mapping: name and in are in `node` already.
    #[allow(clippy::too_many_arguments)]
    fn param_node(
        &mut self,
        mut node: Node,
        required: bool,
        description: &str,
        deprecated: bool,
        schema: Option<Node>,
        example: Option<Value>,
        place: &str,
    ) -> Node {
        let mut entries: Vec<Entry> = match schema {
            Some(Node::Map(e)) => e,
            Some(Node::Shared(_, inner)) => match inner.as_ref() {
                Node::Map(e) => e.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut description = description.to_string();
        let mut example = example;
        let mut deprecated = deprecated;
        let mut top: Vec<Entry> = Vec::new();
        let mut rest: Vec<Entry> = Vec::new();
        let mut required_props = None;
        for e in entries.drain(..) {
            match e.key.as_str() {
                "description" => {
                    if description.is_empty()
                        && let Node::Scalar(Value::String(d)) = &e.value
                    {
                        description = d.trim_end().to_string();
                    }
                }
                "examples" => {
                    if example.is_none()
                        && let Node::Seq(items) = &e.value
                    {
                        example = items.first().map(Node::to_json);
                    }
                }
                "deprecated" => deprecated |= matches!(e.value, Node::Scalar(Value::Bool(true))),
                "required" => required_props = Some(e.value),
                "readOnly" | "writeOnly" | "$comment" => {
                    self.report.note(
                        "schema_annotation",
                        "`readOnly`, `writeOnly` and `$comment` on a parameter are not kept",
                        place,
                    );
                }
                k if TOP_LEVEL.contains(&k) => top.push(e),
                _ => rest.push(e),
            }
        }
        let has_default = top.iter().any(|e| e.key == "default");
        let send_default = required
            && has_default
            && node.get("in").is_some_and(
                |n| matches!(n, Node::Scalar(Value::String(l)) if l == "header" || l == "query"),
            );
        if required && !send_default {
            node.push("required", Node::Scalar(Value::Bool(true)));
        }
        if !description.is_empty() {
            node.push("description", s(&description));
        }
        if deprecated {
            node.push("deprecated", s("Deprecated in the OpenAPI description."));
        }
        if let Some(ex) = example.filter(|v| !v.is_null()) {
            node.push("example", Node::from_json(&ex));
        }
        if send_default {
            node.push_commented(
                "send_default",
                Node::Scalar(Value::Bool(true)),
                "Required by the spec, with a default: sent when the caller gives none.",
            );
        }
        if let Node::Map(out) = &mut node {
            out.extend(top);
        }
        if let Some(r) = required_props {
            node.push("required_properties", r);
        }
        if !rest.is_empty() {
            let key = if node.get("anyOf").is_none() {
                Some("anyOf")
            } else if node.get("oneOf").is_none() {
                Some("oneOf")
            } else {
                None
            };
            match key {
                Some(k) => node.push(k, Node::Seq(vec![Node::Map(rest)])),
                None => self.report.note(
                    "schema_keyword",
                    "keywords of a parameter schema with both oneOf and anyOf (allOf, not, ...) are not kept",
                    place,
                ),
            }
        }
        node
    }

    fn is_array(&self, schema: &Value) -> bool {
        match follow_refs(self.spec, schema, 8).get("type") {
            Some(Value::String(t)) => t == "array",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
            _ => false,
        }
    }

    /// Follow references of a schema to the schema itself.
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        follow_refs(self.spec, schema, 16)
    }

    /// A body schema's fields: an object's properties (allOf merged, oneOf alternatives merged
    /// as optional fields).
    fn body_properties(&mut self, schema: &'a Value, op: &Operation<'a>) -> BodyShape<'a> {
        let sc = self.resolve(schema);
        let mut fields: Vec<(String, &'a Value)> = Vec::new();
        let mut required: Vec<String> = Vec::new();
        let mut open = false;
        let mut any = false;
        self.collect_fields(sc, &mut fields, &mut required, &mut open, &mut any, op, 0);
        if !any {
            return BodyShape::Other;
        }
        BodyShape::Fields {
            fields,
            required,
            open,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn collect_fields(
        &mut self,
        sc: &'a Value,
        fields: &mut Vec<(String, &'a Value)>,
        required: &mut Vec<String>,
        open: &mut bool,
        any: &mut bool,
        op: &Operation<'a>,
        depth: usize,
    ) {
        let sc = self.resolve(sc);
        if depth > 8 {
            return;
        }
        let ty = sc.get("type");
        let is_object = matches!(ty, Some(Value::String(t)) if t == "object")
            || sc.get("properties").is_some()
            || matches!(ty, Some(Value::Array(ts)) if ts.iter().any(|t| t == "object"));
        if let Some(Value::Object(props)) = sc.get("properties") {
            *any = true;
            for (k, v) in props {
                if v.get("readOnly") == Some(&Value::Bool(true)) {
                    continue;
                }
                if !fields.iter().any(|(f, _)| f == k) {
                    fields.push((k.clone(), v));
                }
            }
            for r in sc
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !required.iter().any(|x| x == r) {
                    required.push(r.to_string());
                }
            }
        }
        if is_object {
            *any = true;
            match sc.get("additionalProperties") {
                Some(Value::Bool(false)) => {}
                Some(_) => *open = true,
                None if sc.get("properties").is_none() && sc.get("allOf").is_none() => *open = true,
                None => {}
            }
        }
        if let Some(Value::Array(parts)) = sc.get("allOf") {
            for p in parts {
                self.collect_fields(p, fields, required, open, any, op, depth + 1);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alts)) = sc.get(key) {
                let objects: Vec<&'a Value> = alts
                    .iter()
                    .map(|a| self.resolve(a))
                    .filter(|a| a.get("properties").is_some())
                    .collect();
                if objects.is_empty() {
                    continue;
                }
                self.report.note(
                    "body_alternatives",
                    format!("the body's `{key}` alternatives are merged into one set of fields; which combinations are valid is not checked"),
                    op.label(),
                );
                let mut req_sets: Vec<Vec<String>> = Vec::new();
                for a in objects {
                    let mut r = Vec::new();
                    let mut o = false;
                    self.collect_fields(a, fields, &mut r, &mut o, any, op, depth + 1);
                    req_sets.push(r);
                }
                if let Some(first) = req_sets.first() {
                    for r in first {
                        if req_sets.iter().all(|set| set.contains(r)) && !required.contains(r) {
                            required.push(r.clone());
                        }
                    }
                }
            }
        }
    }

    fn success_response(&mut self, op: &Operation<'a>) -> Option<SuccessResponse<'a>> {
        let responses = op.op.get("responses").and_then(Value::as_object)?;
        let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
        codes.sort();
        let code = codes
            .first()
            .copied()
            .or_else(|| responses.keys().find(|k| *k == "default"))?;
        let status: u16 = match code.as_str() {
            "default" | "2XX" | "2xx" => 200,
            c => c.parse().unwrap_or(200),
        };
        let place = format!("{}/responses/{code}", op.pointer());
        let (resp, _) = self
            .schemas
            .deref(&responses[code], &place, &mut self.report)?;
        if resp
            .get("links")
            .is_some_and(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        {
            self.report
                .note("links", "response `links` are not mapped", op.label());
        }
        let link_header = resp
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("link")));
        let content = resp.get("content").and_then(Value::as_object);
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return Some(SuccessResponse {
                status,
                kind: "json",
                json_too: false,
                example: None,
                schema: None,
                link_header,
            });
        };
        let json_media = content.keys().find(|k| is_json(k));
        let sse = content.keys().any(|k| k.starts_with("text/event-stream"));
        let jsonl = content
            .keys()
            .find(|k| k.contains("jsonl") || k.contains("ndjson") || k.contains("json-seq"));
        let (media, kind) = if sse {
            (
                content
                    .keys()
                    .find(|k| k.starts_with("text/event-stream"))
                    .cloned()
                    .unwrap_or_default(),
                "sse",
            )
        } else if let Some(j) = json_media {
            (j.clone(), "json")
        } else if let Some(j) = jsonl {
            (j.clone(), "jsonl")
        } else {
            (content.keys().next().cloned().unwrap_or_default(), "binary")
        };
        if content.len() > 1 && kind != "sse" {
            for other in content.keys().filter(|k| **k != media) {
                self.report.note(
                    "alternative_response_type",
                    format!("the response is also available as `{other}`; the function decodes `{media}`"),
                    op.label(),
                );
            }
        }
        let example_media = if kind == "sse" {
            json_media.cloned().unwrap_or(media.clone())
        } else {
            media.clone()
        };
        let mt = content.get(&example_media)?;
        let schema: Option<&'a Value> = mt.get("schema");
        let example = if kind == "json" || (kind == "sse" && json_media.is_some()) {
            self.media_example(mt, &place).or_else(|| {
                schema
                    .map(|sc| sample(self.spec, sc))
                    .filter(|v| !v.is_null())
                    .map(|v| Node::from_json(&v))
            })
        } else if kind == "jsonl" {
            schema
                .map(|sc| sample(self.spec, sc))
                .filter(|v| !v.is_null())
                .map(|v| Node::Seq(vec![Node::from_json(&v)]))
        } else {
            None
        };
        Some(SuccessResponse {
            status,
            kind,
            json_too: json_media.is_some(),
            example,
            schema,
            link_header,
        })
    }

    /// The spec's own example of a media type (`example`, or the first of `examples`), shared
    /// when it is a component used more than once.
    fn media_example(&mut self, mt: &'a Value, place: &str) -> Option<Node> {
        if let Some(v) = mt.get("example") {
            return Some(Node::from_json(v));
        }
        let (_, first) = mt.get("examples")?.as_object()?.iter().next()?;
        if let Some(r) = first.get("$ref").and_then(Value::as_str) {
            let base = format!("example_{}", snake(r.rsplit('/').next().unwrap_or("x")));
            if let Some(done) = self.examples.get(r).cloned() {
                let anchor = self.schemas.anchor_named(r, &base);
                return Some(Node::Shared(anchor, done));
            }
            let (ex, _) = self.schemas.deref(first, place, &mut self.report)?;
            let node = Rc::new(Node::from_json(ex.get("value")?));
            self.examples.insert(r.to_string(), node.clone());
            let anchor = self.schemas.anchor_named(r, &base);
            return Some(Node::Shared(anchor, node));
        }
        first.get("value").map(Node::from_json)
    }

    /// Pagination from the parameters and the response's shape, or a comment saying why none.
    fn pagination(
        &self,
        query: &[String],
        r: &SuccessResponse<'a>,
    ) -> (Option<Node>, Option<String>) {
        let has = |n: &str| query.iter().any(|q| q == n);
        let schema = r.schema.map(|sc| self.resolve(sc));
        let is_list =
            schema.is_some_and(|sc| sc.get("type").and_then(Value::as_str) == Some("array"));
        let props: Vec<String> = schema
            .map(|sc| {
                let mut all = Vec::new();
                let mut collect = |o: &'a Value| {
                    if let Some(Value::Object(p)) = o.get("properties") {
                        all.extend(p.keys().cloned());
                    }
                };
                collect(sc);
                if let Some(Value::Array(parts)) = sc.get("allOf") {
                    for p in parts {
                        collect(self.resolve(p));
                    }
                }
                all
            })
            .unwrap_or_default();
        let prop = |n: &str| props.iter().any(|p| p == n);
        let array_prop = || -> Option<String> {
            let sc = schema?;
            let p = sc.get("properties")?.as_object()?;
            for want in ["data", "items", "results", "records", "entries"] {
                if p.contains_key(want) {
                    return Some(format!("/{want}"));
                }
            }
            p.iter()
                .find(|(_, v)| self.resolve(v).get("type").and_then(Value::as_str) == Some("array"))
                .map(|(k, _)| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        };
        let items = if is_list {
            Some(String::new())
        } else {
            array_prop()
        };
        let size = [
            "per_page",
            "page_size",
            "limit",
            "size",
            "count",
            "max_results",
            "page_limit",
        ]
        .into_iter()
        .find(|n| has(n));
        let mut p = Node::map();
        let cursor_param = [
            "after_id",
            "starting_after",
            "after",
            "cursor",
            "page_token",
            "next_token",
            "continuation_token",
            "next_page_token",
            "page_cursor",
        ]
        .into_iter()
        .find(|n| has(n));
        let push_common = |p: &mut Node, items: &str| {
            p.push("items", s(items));
            if let Some(sz) = size.filter(|sz| *sz != "limit") {
                p.push("size_param", s(sz));
            }
        };
        if let Some(items) = &items {
            if r.link_header && (is_list || !items.is_empty()) {
                p.push("style", s("link"));
                push_common(&mut p, items);
                if has("page") {
                    p.push("page_param", s("page"));
                }
                if prop("total_count") {
                    p.push("total", s("/total_count"));
                }
                return (Some(p), None);
            }
            if let Some(c) = cursor_param.filter(|_| !is_list) {
                let from = [
                    "last_id",
                    "next_cursor",
                    "next_page_token",
                    "nextPageToken",
                    "next_token",
                    "cursor",
                    "next",
                ]
                .into_iter()
                .find(|f| prop(f));
                p.push("style", s("cursor"));
                push_common(&mut p, items);
                let mut cur = Node::map();
                match from {
                    Some(f) => {
                        cur.push("from", s(&format!("/{f}")));
                        if f == "last_id" {
                            cur.push("item", s("/id"));
                        }
                    }
                    None if prop("has_more") => cur.push("item", s("/id")),
                    None => {
                        return (
                            None,
                            Some(format!(
                                "No pagination declared: `{c}` looks like a cursor, but the response names no next cursor. Add `pagination:` by hand (docs/manifest-format.md#pagination)."
                            )),
                        );
                    }
                }
                cur.push("param", s(c));
                p.push("cursor", cur);
                if has("before_id") && prop("first_id") {
                    let mut rev = Node::map();
                    rev.push("from", s("/first_id"));
                    rev.push("item", s("/id"));
                    rev.push("param", s("before_id"));
                    p.push("reverse", rev);
                }
                if prop("has_more") {
                    p.push("has_more", s("/has_more"));
                }
                return (Some(p), None);
            }
            if has("page") {
                p.push("style", s("page"));
                push_common(&mut p, items);
                if prop("total_count") {
                    p.push("total", s("/total_count"));
                }
                return (Some(p), None);
            }
            if has("offset") {
                p.push("style", s("offset"));
                push_common(&mut p, items);
                if let Some(t) = ["total", "total_count", "count"]
                    .into_iter()
                    .find(|t| prop(t))
                {
                    p.push("total", s(&format!("/{t}")));
                }
                return (Some(p), None);
            }
        }
        let looks_paged = size.is_some() || cursor_param.is_some() || has("page") || has("offset");
        if looks_paged {
            let why = format!(
                "No pagination declared: the parameters ({}) suggest pages, but the response shape matches no known style. Add `pagination:` by hand (docs/manifest-format.md#pagination).",
                query
                    .iter()
                    .filter(|q| [
                        "per_page",
                        "page_size",
                        "limit",
                        "page",
                        "offset",
                        "cursor",
                        "after",
                        "after_id",
                        "starting_after",
                        "page_token"
                    ]
                    .contains(&q.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return (None, Some(why));
        }
        (None, None)
    }
}

#[derive(Default)]
enum BodyShape<'a> {
    Fields {
        fields: Vec<(String, &'a Value)>,
        required: Vec<String>,
        open: bool,
    },
    #[default]
    Other,
}

struct SuccessResponse<'a> {
    status: u16,
    kind: &'static str,
    json_too: bool,
    example: Option<Node>,
    schema: Option<&'a Value>,
    link_header: bool,
}

fn is_json(media: &str) -> bool {
    let m = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    m == "application/json" || m.ends_with("+json") || m == "*/*" || m == "application/*"
}

/// The request media type the manifest sends, and how: JSON first, then urlencoded, multipart,
/// anything else raw.
fn pick_request_media(content: &Map<String, Value>) -> (String, &'static str) {
    if let Some(k) = content.keys().find(|k| is_json(k) && !k.contains('*')) {
        return (k.clone(), "json");
    }
    if let Some(k) = content
        .keys()
        .find(|k| k.starts_with("application/x-www-form-urlencoded"))
    {
        return (k.clone(), "form");
    }
    if let Some(k) = content
        .keys()
        .find(|k| k.starts_with("multipart/form-data"))
    {
        return (k.clone(), "multipart");
    }
    (content.keys().next().cloned().unwrap_or_default(), "raw")
}

fn raw_has_bool_stream(params: &[Node]) -> bool {
    params.iter().any(|p| {
        matches!(p.get("name"), Some(Node::Scalar(Value::String(n))) if n == "stream")
            && matches!(p.get("type"), Some(Node::Scalar(Value::String(t))) if t == "boolean")
    })
}

/// A parameter's example from the spec: `example`, the first of `examples`, or its schema's.
fn param_example(m: &mut Mapper<'_>, p: &Value) -> Option<Value> {
    if let Some(v) = p.get("example") {
        return Some(v.clone());
    }
    if let Some(Value::Object(exs)) = p.get("examples")
        && let Some((_, first)) = exs.iter().next()
    {
        let first = match first.get("$ref").and_then(Value::as_str) {
            Some(r) => m.spec.pointer(r)?,
            None => first,
        };
        return first.get("value").cloned();
    }
    let sc = p.get("schema")?;
    let sc = m.resolve(sc);
    sc.get("example").cloned().or_else(|| {
        sc.get("examples")
            .and_then(Value::as_array)
            .and_then(|a| a.first().cloned())
    })
}

/// Follow `$ref`s from `schema` through `spec`, at most `depth` hops (a cycle stops there).
fn follow_refs<'v>(spec: &'v Spec, schema: &'v Value, depth: usize) -> &'v Value {
    let mut cur = schema;
    for _ in 0..depth {
        match cur
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| spec.pointer(r))
        {
            Some(next) => cur = next,
            None => break,
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("listForRepo"), "list_for_repo");
        assert_eq!(snake("repos/list-for-user"), "repos_list_for_user");
        assert_eq!(snake("Get Pet By ID"), "get_pet_by_id");
        assert_eq!(snake("getHTTPResponse"), "get_http_response");
        assert_eq!(snake("2fa"), "n2fa");
        assert_eq!(snake("__"), "unnamed");
        assert_eq!(snake("X-Request-ID"), "x_request_id");
    }

    #[test]
    fn globs() {
        assert!(glob("/pets/*", "/pets/{id}"));
        assert!(!glob("/pets/*", "/pets/{id}/photos"));
        assert!(glob("/pets/**", "/pets/{id}/photos"));
        assert!(glob("/p?ts", "/pets"));
    }
}
