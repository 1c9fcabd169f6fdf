//! Named accounts and their secrets. (Skeleton: the executor issue fills it in; the signatures
//! are the contract.)

use std::path::PathBuf;

use crate::error::Result;
use crate::manifest::Manifest;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One resolved account of one integration.
#[derive(Debug, Clone)]
pub struct Account {
    pub integration: String,
    pub name: String,
    pub base_url: String,
    pub secrets: std::collections::HashMap<String, Secret>,
}

/// All configured accounts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub config_dir: PathBuf,
    /// When set, every account of every integration points here with placeholder keys.
    pub offline_base_url: Option<String>,
}

impl Credentials {
    /// Load from `dir`, else `$KOSMO_CONFIG_DIR`, else `~/.config/kosmo`.
    pub fn load(dir: Option<PathBuf>) -> Result<Self> {
        Ok(Credentials { config_dir: dir.unwrap_or_default(), offline_base_url: None })
    }

    /// Point every account at a simulator, with each credential's placeholder key.
    pub fn offline(base_url: impl Into<String>) -> Self {
        Credentials { config_dir: PathBuf::new(), offline_base_url: Some(base_url.into()) }
    }

    /// Account names configured for an integration; always includes `default`.
    pub fn accounts(&self, _integration: &str) -> Vec<String> {
        vec!["default".into()]
    }

    /// Resolve an account: base URL and secrets, environment overrides applied.
    pub fn resolve(&self, manifest: &Manifest, account: &str) -> Result<Account> {
        Ok(Account {
            integration: manifest.name.clone(),
            name: account.into(),
            base_url: self.offline_base_url.clone().unwrap_or_else(|| manifest.base_url.clone()),
            secrets: Default::default(),
        })
    }
}
