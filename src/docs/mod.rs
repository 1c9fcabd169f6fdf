//! Docs rendered from the manifests by the minijinja templates in `templates/` (embedded in the
//! binary). The same views feed the runtime pages (`docs.read`, `lua_read_doc`,
//! `kosmo integrations:docs`), the committed reference (`kosmo docs:generate`) and the LuaCATS file,
//! so the docs cannot drift from what the runtime accepts.
//!
//! Templates run with strict undefined behaviour: a typo in a template fails rendering (and the
//! snapshot tests) instead of printing an empty string to a user. The environment is built once per
//! process and the per-integration views once per [`Docs`], so a function page renders in
//! microseconds and can be rendered on every call.

mod lua;
mod text;
pub mod tree;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, context};

use crate::error::{Error, Result, closest};
use crate::registry::Registry;

pub use lua::{block as lua_block, inline as lua_inline};
pub use text::markdown_to_text;
pub use view::{FunctionView, IntegrationView};

/// A search hit: the page name and a one-line summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    pub page: String,
    pub title: String,
    pub summary: String,
}

/// One rendered page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page {
    /// The canonical name (`integrations.<name>.<function>`).
    pub page: String,
    pub title: String,
    pub summary: String,
    pub markdown: String,
}

/// A page's name and one-line description, without rendering it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageInfo {
    pub page: String,
    pub title: String,
    pub summary: String,
}

/// Guide pages: (name, title, summary, template).
const GUIDES: &[(&str, &str, &str, &str)] = &[
    (
        "overview",
        "kosmo Lua overview",
        "The Lua environment: integrations, calling conventions, accounts, docs and helpers.",
        "overview.md.j2",
    ),
    (
        "errors",
        "Errors",
        "Every error code, its fields, and what to do about it.",
        "errors.md.j2",
    ),
    (
        "examples",
        "Examples",
        "Every example of every manifest, runnable as shown.",
        "examples.md.j2",
    ),
];

/// The embedded templates.
const TEMPLATES: &[(&str, &str)] = &[
    ("_macros.j2", include_str!("../../templates/_macros.j2")),
    (
        "integration.md.j2",
        include_str!("../../templates/integration.md.j2"),
    ),
    (
        "function.md.j2",
        include_str!("../../templates/function.md.j2"),
    ),
    (
        "reference.md.j2",
        include_str!("../../templates/reference.md.j2"),
    ),
    ("cli.md.j2", include_str!("../../templates/cli.md.j2")),
    (
        "overview.md.j2",
        include_str!("../../templates/overview.md.j2"),
    ),
    ("errors.md.j2", include_str!("../../templates/errors.md.j2")),
    (
        "examples.md.j2",
        include_str!("../../templates/examples.md.j2"),
    ),
    ("index.md.j2", include_str!("../../templates/index.md.j2")),
    ("mcp.md.j2", include_str!("../../templates/mcp.md.j2")),
    ("kosmo.lua.j2", include_str!("../../templates/kosmo.lua.j2")),
];

fn template_error(e: minijinja::Error) -> Error {
    let mut message = format!("docs template error: {e:#}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!("\ncaused by: {s}"));
        source = s.source();
    }
    Error::Docs { message }
}

fn filter_error(e: impl std::fmt::Display) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
}

fn to_json(v: &minijinja::Value) -> std::result::Result<serde_json::Value, minijinja::Error> {
    if v.is_undefined() {
        return Err(filter_error("undefined value given to a Lua filter"));
    }
    serde_json::to_value(v).map_err(filter_error)
}

/// The template environment, built once per process.
fn env() -> Result<&'static Environment<'static>> {
    static ENV: OnceLock<std::result::Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("{e:#}"))?;
        }
        // A JSON value as a Lua table literal, laid out over lines (the argument table of a call).
        env.add_filter(
            "lua",
            |v: minijinja::Value| -> std::result::Result<String, minijinja::Error> {
                Ok(lua::block(&to_json(&v)?, 0, true))
            },
        );
        env.add_filter(
            "lua_inline",
            |v: minijinja::Value| -> std::result::Result<String, minijinja::Error> {
                Ok(lua::inline(&to_json(&v)?))
            },
        );
        // Text inside a markdown table cell: pipes escaped, one line.
        env.add_filter("md_cell", |s: String| -> String { view::md_cell(&s) });
        // Text inside a single-quoted shell word.
        env.add_filter("shq", |s: String| -> String { s.replace('\'', "'\\''") });
        // Text inside a `---` annotation line.
        env.add_filter("lua_comment", |s: String| -> String {
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        });
        Ok(env)
    })
    .as_ref()
    .map_err(|message| Error::Docs {
        message: format!("docs templates do not compile: {message}"),
    })
}

fn render(template: &str, ctx: minijinja::Value) -> Result<String> {
    let tmpl = env()?.get_template(template).map_err(template_error)?;
    let out = tmpl.render(ctx).map_err(template_error)?;
    Ok(tidy(&out))
}

/// One blank line between blocks outside code fences, and exactly one newline at the end, so the
/// templates can stay readable without fighting over whitespace.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    let mut blank = false;
    for line in text.trim_start_matches('\n').lines() {
        let fence = line.trim_start().starts_with("```");
        if !in_code && line.trim().is_empty() {
            blank = true;
            continue;
        }
        if blank && !out.is_empty() {
            out.push('\n');
        }
        blank = false;
        out.push_str(line.trim_end());
        out.push('\n');
        if fence {
            in_code = !in_code;
        }
    }
    out
}

/// The rendered-ready views of one integration.
struct IntegrationViews {
    view: IntegrationView,
    value: minijinja::Value,
    functions: HashMap<String, minijinja::Value>,
}

struct Views {
    integrations: IndexMap<String, IntegrationViews>,
    all: minijinja::Value,
    accounts: minijinja::Value,
}

/// What a page name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Guide(usize),
    Integration {
        name: String,
        account: Option<String>,
    },
    Function {
        integration: String,
        name: String,
        account: Option<String>,
    },
}

/// A function page's context, built without the rest of its integration.
#[derive(Clone)]
struct FunctionSlot {
    header: minijinja::Value,
    function: minijinja::Value,
}

struct Inner {
    registry: Arc<Registry>,
    accounts: BTreeMap<String, Vec<String>>,
    views: OnceLock<Views>,
    /// Function pages read before (or without) the whole views: one view each, on demand.
    functions: std::sync::Mutex<HashMap<String, FunctionSlot>>,
    index: OnceLock<Vec<(PageInfo, Vec<String>, String)>>,
}

/// The runtime docs of a registry.
#[derive(Clone)]
pub struct Docs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Docs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs")
            .field("accounts", &self.inner.accounts)
            .finish()
    }
}

impl Docs {
    /// `accounts`: named accounts per integration, so `integrations.<name>.work` exists.
    pub fn new(registry: Arc<Registry>, accounts: BTreeMap<String, Vec<String>>) -> Self {
        Docs {
            inner: Arc::new(Inner {
                registry,
                accounts,
                views: OnceLock::new(),
                functions: std::sync::Mutex::new(HashMap::new()),
                index: OnceLock::new(),
            }),
        }
    }

    fn views(&self) -> &Views {
        self.inner.views.get_or_init(|| {
            let mut integrations = IndexMap::new();
            let mut accounts = BTreeMap::new();
            for integ in self.inner.registry.iter() {
                let m = &integ.manifest;
                let view = view::integration(m);
                let mut functions = HashMap::new();
                for g in &view.groups {
                    for f in &g.functions {
                        functions.insert(f.name.clone(), minijinja::Value::from(Serde(f)));
                    }
                }
                accounts.insert(m.name.clone(), self.named_accounts(&m.name));
                integrations.insert(
                    m.name.clone(),
                    IntegrationViews {
                        value: minijinja::Value::from(Serde(&view)),
                        view,
                        functions,
                    },
                );
            }
            let all = minijinja::Value::from(
                integrations
                    .values()
                    .map(|v| v.value.clone())
                    .collect::<Vec<_>>(),
            );
            Views {
                integrations,
                all,
                accounts: minijinja::Value::from(Serde(&accounts)),
            }
        })
    }

    /// Named accounts of an integration other than `default`, sorted.
    fn named_accounts(&self, integration: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .accounts
            .get(integration)
            .map(|a| a.iter().filter(|n| *n != "default").cloned().collect())
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    /// Resolve a page name: guide pages, `<name>`, `<name>.<function>` (aliases and full
    /// names too), `integrations.` and `app.` prefixes, and `integrations.<name>.<account>[.fn]`.
    fn resolve(&self, page: &str) -> Option<Target> {
        let p = page.trim();
        let p = p.strip_prefix("app.").unwrap_or(p);
        if let Some(i) = GUIDES.iter().position(|g| g.0 == p) {
            return Some(Target::Guide(i));
        }
        let p = p.strip_prefix("integrations.").unwrap_or(p);
        let mut parts = p.split('.');
        let integ_name = parts.next()?;
        let integ = self.inner.registry.get(integ_name)?;
        let rest: Vec<&str> = parts.collect();
        let is_account =
            |a: &str| a == "default" || self.named_accounts(integ_name).iter().any(|n| n == a);
        match rest.as_slice() {
            [] => Some(Target::Integration {
                name: integ_name.into(),
                account: None,
            }),
            [one] => {
                if let Some((name, _)) = integ.function(one) {
                    Some(Target::Function {
                        integration: integ_name.into(),
                        name: name.into(),
                        account: None,
                    })
                } else if is_account(one) {
                    Some(Target::Integration {
                        name: integ_name.into(),
                        account: Some((*one).into()),
                    })
                } else {
                    None
                }
            }
            [acct, f] if is_account(acct) => integ.function(f).map(|(name, _)| Target::Function {
                integration: integ_name.into(),
                name: name.into(),
                account: Some((*acct).into()),
            }),
            _ => None,
        }
    }

    fn canonical(target: &Target) -> String {
        match target {
            Target::Guide(i) => GUIDES[*i].0.into(),
            Target::Integration {
                name,
                account: None,
            } => format!("integrations.{name}"),
            Target::Integration {
                name,
                account: Some(a),
            } => format!("integrations.{name}.{a}"),
            Target::Function {
                integration,
                name,
                account: None,
            } => format!("integrations.{integration}.{name}"),
            Target::Function {
                integration,
                name,
                account: Some(a),
            } => format!("integrations.{integration}.{a}.{name}"),
        }
    }

    fn prefix(iv: &IntegrationViews, account: &Option<String>) -> String {
        match account {
            Some(a) => format!("{}.{a}", iv.view.namespace),
            None => iv.view.namespace.clone(),
        }
    }

    fn render_target(&self, target: &Target) -> Result<Page> {
        let views = self.views();
        let page = Self::canonical(target);
        match target {
            Target::Guide(i) => {
                let (_, title, summary, template) = GUIDES[*i];
                let markdown = render(
                    template,
                    context! { integrations => views.all.clone(), accounts => views.accounts.clone() },
                )?;
                Ok(Page {
                    page,
                    title: title.into(),
                    summary: summary.into(),
                    markdown,
                })
            }
            Target::Integration { name, account } => {
                let iv = self.integration_views(views, name)?;
                let markdown = render(
                    "integration.md.j2",
                    context! {
                        i => iv.value.clone(),
                        prefix => Self::prefix(iv, account),
                        account => account.clone(),
                        accounts => self.named_accounts(name),
                    },
                )?;
                Ok(Page {
                    page,
                    title: format!("{} - Lua API Reference", iv.view.label),
                    summary: iv.view.summary.clone(),
                    markdown,
                })
            }
            Target::Function {
                integration,
                name,
                account,
            } => {
                let slot = self.function_slot(integration, name)?;
                let prefix = match account {
                    Some(a) => format!("app.integrations[{}].{a}", lua::quote(integration)),
                    None => format!("app.integrations[{}]", lua::quote(integration)),
                };
                let markdown = render(
                    "function.md.j2",
                    context! {
                        i => slot.header,
                        f => slot.function,
                        prefix => prefix,
                        account => account.clone(),
                    },
                )?;
                let summary = self
                    .inner
                    .registry
                    .get(integration)
                    .and_then(|i| i.manifest.functions.get(name))
                    .map(|f| f.summary.trim().to_string())
                    .unwrap_or_default();
                Ok(Page {
                    page,
                    title: format!("{integration}.{name}"),
                    summary,
                    markdown,
                })
            }
        }
    }

    /// The context of one function page: from the full views when they exist, else built alone
    /// (so `docs.read("<name>.<function>")` does not build every function view).
    fn function_slot(&self, integration: &str, name: &str) -> Result<FunctionSlot> {
        let missing = || Error::UnknownPage {
            message: format!("Page 'integrations.{integration}.{name}' not found."),
        };
        if let Some(views) = self.inner.views.get() {
            let iv = views.integrations.get(integration).ok_or_else(missing)?;
            let function = iv.functions.get(name).cloned().ok_or_else(missing)?;
            return Ok(FunctionSlot {
                header: iv.value.clone(),
                function,
            });
        }
        let key = format!("{integration}.{name}");
        let mut cache = self
            .inner
            .functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = cache.get(&key) {
            return Ok(slot.clone());
        }
        let integ = self.inner.registry.get(integration).ok_or_else(missing)?;
        let m = &integ.manifest;
        let f = m.functions.get(name).ok_or_else(missing)?;
        let slot = FunctionSlot {
            header: context! { name => m.name.clone(), label => m.label.clone() },
            function: minijinja::Value::from(Serde(&view::function(m, name, f))),
        };
        cache.insert(key, slot.clone());
        Ok(slot)
    }

    fn integration_views<'a>(&self, views: &'a Views, name: &str) -> Result<&'a IntegrationViews> {
        views
            .integrations
            .get(name)
            .ok_or_else(|| Error::UnknownPage {
                message: format!("Page 'integrations.{name}' not found."),
            })
    }

    fn not_found(&self, page: &str) -> Error {
        let pages: Vec<String> = self.pages().into_iter().map(|p| p.page).collect();
        let short: Vec<String> = pages
            .iter()
            .map(|p| p.strip_prefix("integrations.").unwrap_or(p).to_string())
            .collect();
        let wanted = page
            .trim()
            .trim_start_matches("app.")
            .trim_start_matches("integrations.");
        let near = closest(wanted, short.iter().map(String::as_str));
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" Did you mean: {}?", near.join(", "))
        };
        Error::UnknownPage {
            message: format!(
                "Page '{page}' not found.{hint} Available pages: {}",
                pages.join(", ")
            ),
        }
    }

    /// A rendered page with its canonical name and title.
    pub fn page(&self, page: &str) -> Result<Page> {
        match self.resolve(page) {
            Some(t) => self.render_target(&t),
            None => Err(self.not_found(page)),
        }
    }

    /// Render a page as markdown. Accepts `<name>`, `<name>.<function>`,
    /// `integrations.<name>[.fn]`, `app.`-prefixed names and guide pages.
    pub fn read(&self, page: &str) -> Result<String> {
        self.page(page).map(|p| p.markdown)
    }

    /// Every page, guides first, then per integration its page, named accounts and functions.
    pub fn pages(&self) -> Vec<PageInfo> {
        let mut out: Vec<PageInfo> = GUIDES
            .iter()
            .map(|(n, t, s, _)| PageInfo {
                page: (*n).into(),
                title: (*t).into(),
                summary: (*s).into(),
            })
            .collect();
        for integ in self.inner.registry.iter() {
            let m = &integ.manifest;
            let name = &m.name;
            out.push(PageInfo {
                page: format!("integrations.{name}"),
                title: format!("{} - Lua API Reference", m.label),
                summary: m.summary.trim().to_string(),
            });
            for a in self.named_accounts(name) {
                out.push(PageInfo {
                    page: format!("integrations.{name}.{a}"),
                    title: format!("{} - account {a}", m.label),
                    summary: format!("{} with the `{a}` credential account.", m.label),
                });
            }
            for f in view::doc_order(m) {
                out.push(PageInfo {
                    page: format!("integrations.{name}.{f}"),
                    title: format!("{name}.{f}"),
                    summary: m
                        .functions
                        .get(f)
                        .map(|x| x.summary.trim().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        out
    }

    /// Page names, optionally under a namespace (`integrations`, `<name>`,
    /// `integrations.<name>`, `app.integrations.<name>`).
    pub fn list(&self, namespace: Option<&str>) -> Result<Vec<String>> {
        let pages: Vec<String> = self.pages().into_iter().map(|p| p.page).collect();
        let ns = match namespace.map(str::trim) {
            None | Some("") => return Ok(pages),
            Some(ns) => ns.strip_prefix("app.").unwrap_or(ns),
        };
        let ns = if ns == "integrations"
            || ns.starts_with("integrations.")
            || GUIDES.iter().any(|g| g.0 == ns)
        {
            ns.to_string()
        } else {
            format!("integrations.{ns}")
        };
        let under: Vec<String> = pages
            .iter()
            .filter(|p| **p == ns || p.starts_with(&format!("{ns}.")))
            .cloned()
            .collect();
        if under.is_empty() {
            let mut spaces: Vec<String> = vec!["integrations".into()];
            spaces.extend(
                self.inner
                    .registry
                    .iter()
                    .map(|i| format!("integrations.{}", i.name())),
            );
            return Err(Error::UnknownPage {
                message: format!(
                    "Namespace '{}' not found. Available namespaces: {}",
                    namespace.unwrap_or_default(),
                    spaces.join(", ")
                ),
            });
        }
        Ok(under)
    }

    /// Every page rendered once, with the names a search matches (aliases, full names).
    fn index(&self) -> &[(PageInfo, Vec<String>, String)] {
        self.inner.index.get_or_init(|| {
            let mut out = Vec::new();
            for info in self.pages() {
                let mut names = vec![
                    info.page.to_lowercase(),
                    info.page.trim_start_matches("integrations.").to_lowercase(),
                ];
                if let Some(Target::Function {
                    integration, name, ..
                }) = self.resolve(&info.page)
                    && let Some(integ) = self.inner.registry.get(&integration)
                    && let Some((_, f)) = integ.function(&name)
                {
                    names.push(integ.manifest.full_name(&name, f).to_lowercase());
                    names.extend(f.aliases.iter().map(|a| a.to_lowercase()));
                }
                let body = match self.page(&info.page) {
                    Ok(p) => p.markdown.to_lowercase(),
                    Err(e) => {
                        tracing::warn!("docs page {} does not render: {e}", info.page);
                        String::new()
                    }
                };
                out.push((info, names, body));
            }
            out
        })
    }

    /// Pages ranked by name, then summary, then body.
    pub fn search(&self, query: &str, limit: usize) -> Vec<SearchHit> {
        let q = query.trim().to_lowercase();
        if q.is_empty() || limit == 0 {
            return Vec::new();
        }
        let terms: Vec<&str> = q
            .split(|c: char| c.is_whitespace() || c == '.' || c == ',')
            .filter(|t| !t.is_empty())
            .collect();
        let mut scored: Vec<(u32, &PageInfo)> = Vec::new();
        for (info, names, body) in self.index() {
            let summary = format!("{} {}", info.title, info.summary).to_lowercase();
            let last_segment =
                |n: &String| n.rsplit('.').next().map(str::to_string).unwrap_or_default();
            let mut score = 0u32;
            if names.iter().any(|n| *n == q || last_segment(n) == q) {
                score += 10_000;
            } else if names.iter().any(|n| n.contains(&q)) {
                score += 5_000;
            } else if terms.iter().all(|t| names.iter().any(|n| n.contains(t))) {
                score += 3_000;
            }
            if summary.contains(&q) {
                score += 1_000;
            } else {
                let hits = terms.iter().filter(|t| summary.contains(*t)).count() as u32;
                if hits == terms.len() as u32 {
                    score += 600;
                } else {
                    score += 100 * hits;
                }
            }
            if body.contains(&q) {
                score += 50 + (body.matches(&q).count() as u32).min(40);
            } else {
                score += terms
                    .iter()
                    .map(|t| (body.matches(*t).count() as u32).min(5))
                    .sum::<u32>();
            }
            if score > 0 {
                scored.push((score, info));
            }
        }
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.page.cmp(&b.1.page)));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, i)| SearchHit {
                page: i.page.clone(),
                title: i.title.clone(),
                summary: i.summary.clone(),
            })
            .collect()
    }

    /// LuaCATS annotations for every integration and the helpers.
    pub fn luacats(&self) -> Result<String> {
        let views = self.views();
        render(
            "kosmo.lua.j2",
            context! { integrations => views.all.clone(), accounts => views.accounts.clone() },
        )
    }

    /// The whole committed reference: (path relative to the output directory, contents).
    pub fn generate(&self) -> Result<Vec<(PathBuf, String)>> {
        let views = self.views();
        let guides_ctx =
            context! { integrations => views.all.clone(), accounts => views.accounts.clone() };
        let mut files = vec![(
            PathBuf::from("README.md"),
            render("index.md.j2", guides_ctx.clone())?,
        )];
        for (name, _, _, template) in GUIDES {
            files.push((
                PathBuf::from(format!("{name}.md")),
                render(template, guides_ctx.clone())?,
            ));
        }
        files.push((PathBuf::from("kosmo.lua"), self.luacats()?));
        for (name, iv) in &views.integrations {
            let agent = render(
                "integration.md.j2",
                context! { i => iv.value.clone(), prefix => iv.view.namespace.clone(), account => None::<String>, accounts => Vec::<String>::new() },
            )?;
            files.push((
                PathBuf::from(format!("{name}.md")),
                render(
                    "reference.md.j2",
                    context! { i => iv.value.clone(), prefix => iv.view.namespace.clone(), account => None::<String>, accounts => Vec::<String>::new(), agent => agent },
                )?,
            ));
            let Some(integ) = self.inner.registry.get(name) else {
                continue;
            };
            for f in view::doc_order(&integ.manifest) {
                let fv = iv.functions.get(f).cloned().unwrap_or_default();
                files.push((
                    PathBuf::from(format!("{name}/{f}.md")),
                    render(
                        "function.md.j2",
                        context! { i => iv.value.clone(), f => fv, prefix => iv.view.namespace.clone(), account => None::<String> },
                    )?,
                ));
            }
        }
        Ok(files)
    }
}

/// The page of an MCP server (`tool` `None`: every tool) or of one of its tools, rendered from
/// the tools' descriptions and input schemas (`{name, title?, description?, inputSchema,
/// annotations?}` as the server lists them) through the same macros as integration functions.
pub fn render_mcp(
    server: &str,
    source: &str,
    tools: &[serde_json::Value],
    tool: Option<&str>,
) -> Result<String> {
    use serde_json::Value;
    let views: Vec<Value> = tools
        .iter()
        .filter(|t| tool.is_none_or(|n| t["name"] == n))
        .map(|t| {
            let name = t["name"].as_str().unwrap_or("").to_string();
            let description = t["description"].as_str().unwrap_or("").trim().to_string();
            let (summary, rest) = match description.split_once("\n\n") {
                Some((a, b)) => (a.trim().to_string(), b.trim().to_string()),
                None => (description.clone(), String::new()),
            };
            let access = |k: &str| {
                if lua::is_identifier(k) {
                    format!(".{k}")
                } else {
                    format!("[{}]", lua::quote(k))
                }
            };
            let lua_path = format!("app.mcp{}{}", access(server), access(&name));
            let read_only = t["annotations"]["readOnlyHint"] == Value::Bool(true);
            serde_json::json!({
                "name": name,
                "title": t["title"].as_str().or(t["annotations"]["title"].as_str()).unwrap_or(""),
                "summary": summary,
                "description": rest,
                "class": if read_only { "read" } else { "write" },
                "lua_path": lua_path,
                "rows": view::schema_rows(&t["inputSchema"]),
                "options": [],
                "passthrough": false,
                "annotations": t["annotations"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    if let Some(n) = tool
        && views.is_empty()
    {
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        let close = crate::error::closest(n, names.iter().copied());
        return Err(Error::UnknownPage {
            message: format!(
                "MCP server '{server}' has no tool '{n}'{}; its tools: {}",
                if close.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean: {}?)", close.join(", "))
                },
                names.join(", ")
            ),
        });
    }
    render(
        "mcp.md.j2",
        context! {
            server => server,
            source => source,
            single => tool.is_some(),
            tools => minijinja::Value::from(Serde(&views)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_collapses_blank_lines_outside_code_only() {
        let text = "\n# T\n\n\n\ntext  \n```lua\na\n\n\nb\n```\n\n\nend\n\n";
        assert_eq!(tidy(text), "# T\n\ntext\n```lua\na\n\n\nb\n```\n\nend\n");
    }

    #[test]
    fn filters_render_lua_cells_and_shell_words() {
        let env = env().unwrap();
        let out = env
            .render_str(
                "{{ v|lua }}|{{ v|lua_inline }}|{{ s|md_cell }}|{{ q|shq }}|{{ s|lua_comment }}",
                context! { v => Serde(serde_json::json!({"a": [1, 2]})), s => "x |\n y", q => "it's" },
            )
            .unwrap();
        assert_eq!(
            out,
            "{\n  a = { 1, 2 }\n}|{ a = { 1, 2 } }|x \\| y|it'\\''s|x | y"
        );
    }

    #[test]
    fn strict_undefined_fails_rendering() {
        let err = env()
            .unwrap()
            .render_str("{{ nope }}", context! {})
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
        assert!(
            env()
                .unwrap()
                .render_str("{{ x|lua }}", context! {})
                .is_err()
        );
    }
}
