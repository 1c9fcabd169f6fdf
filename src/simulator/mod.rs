//! The offline simulator: a local HTTP server that answers every function of a manifest the way
//! the real service does, so users can rehearse workflows and run CI without keys or spend.
//!
//! Layers, one file each: [`server`] (accept loop, connection kill switch), [`router`] (method +
//! path template → function), [`auth`] (credentials, required headers, beta names), [`request`]
//! (path + query + body → the executor's own input schema), [`faults`] (scripted failures),
//! [`generic`] (answers from the manifest's `simulator.response` example) and the built-in
//! behaviours of [`anthropic`], found by the name a function's `simulator.behaviour` gives.
//! A manifest with no behaviours still gets a working simulator from its examples alone.

pub mod anthropic;
pub mod auth;
pub mod behaviours;
pub mod faults;
pub mod generic;
pub mod pagination;
pub mod request;
pub mod router;
pub mod server;
pub mod sse;
pub mod wire;

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// Settings of one simulator.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub integration: String,
    pub host: String,
    pub port: u16,
    pub latency_ms: u64,
    pub seed: u64,
    pub batch_delay_ms: u64,
    pub faults: Option<String>,
    pub api_key: Option<String>,
    pub admin_key: Option<String>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            integration: "anthropic".into(),
            host: "127.0.0.1".into(),
            port: 0,
            latency_ms: 0,
            seed: 0,
            batch_delay_ms: 2000,
            faults: None,
            api_key: None,
            admin_key: None,
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

/// Start a simulator in-process on `opts.host:opts.port` (0 picks a free port).
pub async fn start(registry: Arc<Registry>, opts: SimulatorOptions) -> Result<RunningSimulator> {
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
    let sim = Arc::new(server::Sim::new(integration, opts, base_url.clone(), plan));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(server::run(listener, sim, stop_rx));
    Ok(RunningSimulator {
        base_url,
        stop: Some(stop),
        task: Some(task),
    })
}
