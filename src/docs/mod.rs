//! Docs rendered from the manifests. (Skeleton: the docs issue fills it in; the signatures are
//! the contract the Lua runtime and the CLI code against.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// A search hit: the page name and a one-line summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    pub page: String,
    pub title: String,
    pub summary: String,
}

/// The runtime docs of a registry.
#[derive(Clone)]
pub struct Docs {
    #[allow(dead_code)]
    registry: Arc<Registry>,
    #[allow(dead_code)]
    accounts: BTreeMap<String, Vec<String>>,
}

impl Docs {
    /// `accounts`: named accounts per integration, so `integrations.anthropic.work` exists.
    pub fn new(registry: Arc<Registry>, accounts: BTreeMap<String, Vec<String>>) -> Self {
        Docs { registry, accounts }
    }

    /// Render a page as markdown. Accepts `anthropic`, `anthropic.create_message`,
    /// `integrations.anthropic[.fn]`, `app.`-prefixed names and guide pages.
    pub fn read(&self, page: &str) -> Result<String> {
        Err(Error::Unsupported { function: "docs.read".into(), message: format!("no page '{page}' yet") })
    }

    /// Page names, optionally under a namespace.
    pub fn list(&self, _namespace: Option<&str>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Pages ranked by name, then summary, then body.
    pub fn search(&self, _query: &str, _limit: usize) -> Vec<SearchHit> {
        Vec::new()
    }
}
