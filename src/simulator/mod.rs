//! The offline simulator: a local HTTP server that answers every function of a manifest the way
//! the real service does, so users can rehearse workflows and run CI without keys or spend.
//!
//! Layers, one file each: [`server`] (accept loop, connection kill switch), [`router`] (method +
//! path template → function), [`auth`] (credentials, required headers, beta names), [`request`]
//! (path + query + body → the executor's own input schema), [`faults`] (scripted failures),
//! [`generic`] (answers from the manifest's `simulator.response` example), [`resources`] (the
//! stateful tier: create / get / list / update / delete of declared resources), [`pagination`]
//! (the server side of every declared pagination style) and the behaviour families of
//! [`behaviours`] (each in its own directory, e.g. [`anthropic`]), found by the name a
//! function's `simulator.behaviour` gives. A manifest with no behaviours still gets a working
//! simulator from its declarations alone. Mock mode (`mock`) answers every well-formed request.

pub(crate) mod anthropic;
pub mod auth;
pub mod behaviours;
pub mod faults;
pub mod generic;
pub mod pagination;
pub mod request;
pub mod resources;
pub mod router;
pub mod server;
pub mod sse;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// Settings of one simulator.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The integration to simulate; empty: the first built-in one.
    pub integration: String,
    pub host: String,
    pub port: u16,
    pub latency_ms: u64,
    pub seed: u64,
    pub faults: Option<String>,
    /// Credential name -> the one value accepted for it (`--key NAME=VALUE`); credentials not
    /// named accept any well-shaped key.
    pub keys: BTreeMap<String, String>,
    /// Options of the integration's behaviour family (`--set NAME=VALUE`), e.g. a delay.
    pub settings: BTreeMap<String, String>,
    /// Mock mode: every well-formed request gets a schema-valid answer (no 404 for unknown ids,
    /// no refusals across parameters, unknown beta names accepted); auth and validation stay.
    pub mock: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            integration: String::new(),
            host: "127.0.0.1".into(),
            port: 0,
            latency_ms: 0,
            seed: 0,
            faults: None,
            keys: BTreeMap::new(),
            settings: BTreeMap::new(),
            mock: false,
        }
    }
}

impl SimulatorOptions {
    /// The integration these options name, or the first built-in one.
    pub fn integration_name(&self) -> &str {
        if self.integration.is_empty() {
            crate::registry::BUILTIN
                .first()
                .map(|(file, _)| file.trim_end_matches(".yaml"))
                .unwrap_or("")
        } else {
            &self.integration
        }
    }
}

/// A running simulator; dropping it (or `shutdown`) stops it.
pub struct RunningSimulator {
    pub base_url: String,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    /// Stop accepting, close every open connection and wait for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        // Dropping the sender wakes every receiver: the accept loop and each connection end.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// Settings for the simulators of an `--offline` run: `--sim-set [NAME.]OPTION=VALUE` (an
/// option of an integration's behaviour family, such as a batch delay, for one integration or
/// every one that has it) and `--sim-latency MS`.
#[derive(Debug, Clone, Default)]
pub struct OfflineOptions {
    pub settings: Vec<OfflineSetting>,
    pub latency_ms: u64,
}

/// One `--sim-set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineSetting {
    /// `None`: every integration whose simulator has the option.
    pub integration: Option<String>,
    pub name: String,
    pub value: String,
}

impl OfflineSetting {
    /// `[NAME.]OPTION=VALUE`.
    pub fn parse(s: &str) -> std::result::Result<OfflineSetting, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--sim-set {s}: expected [INTEGRATION.]OPTION=VALUE"))?;
        let (integration, name) = match key.split_once('.') {
            Some((i, n)) => (Some(i.trim().to_string()), n.trim().to_string()),
            None => (None, key.trim().to_string()),
        };
        if name.is_empty() || integration.as_deref() == Some("") {
            return Err(format!(
                "--sim-set {s}: expected [INTEGRATION.]OPTION=VALUE"
            ));
        }
        Ok(OfflineSetting {
            integration,
            name,
            value: value.to_string(),
        })
    }
}

/// The options (`--set NAME=VALUE`) an integration's simulator takes: `(name, meaning)`.
pub fn options_of(
    integration: &crate::registry::Integration,
) -> &'static [(&'static str, &'static str)] {
    behaviours::family_for(&integration.manifest)
        .map(|f| f.options())
        .unwrap_or(&[])
}

impl OfflineOptions {
    /// Every setting must name a loaded integration and an option some simulator has: a typo
    /// is an error, never a silently ignored setting.
    pub fn check(&self, registry: &Registry) -> Result<()> {
        for s in &self.settings {
            let targets: Vec<&Arc<crate::registry::Integration>> = match &s.integration {
                Some(name) => vec![registry.require(name)?],
                None => registry.iter().collect(),
            };
            let known: Vec<&str> = targets
                .iter()
                .flat_map(|i| options_of(i).iter().map(|(n, _)| *n))
                .collect();
            if !known.contains(&s.name.as_str()) {
                let scope = match &s.integration {
                    Some(n) => format!("the {n} simulator has"),
                    None => "no simulator has".to_string(),
                };
                return Err(Error::config(format!(
                    "--sim-set {}: {scope} no option '{}' (known: {})",
                    s.name,
                    s.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    /// The settings that apply to one integration.
    fn settings_for(&self, integ: &crate::registry::Integration) -> BTreeMap<String, String> {
        let known = options_of(integ);
        self.settings
            .iter()
            .filter(|s| match &s.integration {
                Some(n) => n == integ.name(),
                None => known.iter().any(|(k, _)| *k == s.name),
            })
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect()
    }
}

/// One in-process simulator per named integration (each answers from its own manifest, so no
/// call of one integration can reach another's), and credentials that point each integration at
/// its own with placeholder keys: what `--offline` runs use. One that cannot start is left out
/// with a warning; its calls then fail with "no simulator" instead.
pub async fn start_each(
    registry: &Arc<Registry>,
    names: Vec<String>,
    offline: &OfflineOptions,
) -> (crate::credentials::Credentials, Vec<RunningSimulator>) {
    let mut urls = BTreeMap::new();
    let mut started = Vec::new();
    for name in names {
        let settings = registry
            .get(&name)
            .map(|i| offline.settings_for(i))
            .unwrap_or_default();
        let opts = SimulatorOptions {
            integration: name.clone(),
            latency_ms: offline.latency_ms,
            settings,
            ..Default::default()
        };
        match start(registry.clone(), opts).await {
            Ok(sim) => {
                urls.insert(name, sim.base_url.clone());
                started.push(sim);
            }
            Err(e) => tracing::warn!("no simulator for {name}: {e}"),
        }
    }
    (crate::credentials::Credentials::offline_each(urls), started)
}

/// Start a simulator in-process on `opts.host:opts.port` (0 picks a free port).
pub async fn start(registry: Arc<Registry>, opts: SimulatorOptions) -> Result<RunningSimulator> {
    let mut opts = opts;
    opts.integration = opts.integration_name().to_string();
    let integration = registry.require(&opts.integration)?.clone();
    let plan = faults::FaultPlan::parse(opts.faults.as_deref().unwrap_or(""), &integration)
        .map_err(|m| Error::config(format!("--faults: {m}")))?;
    let host = if opts.host.contains(':') && !opts.host.starts_with('[') {
        format!("[{}]", opts.host)
    } else {
        opts.host.clone()
    };
    let addr = format!("{host}:{}", opts.port);
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::config(format!(
                "simulator cannot listen on {addr}: the port is already in use (choose another --port, or 0 for a free one)"
            ))
        } else {
            Error::config(format!("simulator cannot listen on {addr}: {e}"))
        }
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::config(format!("simulator cannot read its address: {e}")))?;
    if !local.ip().is_loopback() {
        tracing::warn!("simulator: listening on {local}, reachable from other machines");
    }
    let base_url = format!("http://{local}");
    let sim = Arc::new(
        server::Sim::new(integration, opts, base_url.clone(), plan).map_err(Error::config)?,
    );
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(server::run(listener, sim, stop_rx));
    Ok(RunningSimulator {
        base_url,
        stop: Some(stop),
        task: Some(task),
    })
}
