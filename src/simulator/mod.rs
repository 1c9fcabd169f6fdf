//! The offline simulator. (Skeleton: the simulator issue fills it in; the signatures are the
//! contract the CLI and tests code against.)

use std::sync::Arc;

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
}

impl RunningSimulator {
    pub async fn shutdown(self) {}
}

/// Start a simulator in-process on `opts.host:opts.port` (0 picks a free port).
pub async fn start(_registry: Arc<Registry>, opts: SimulatorOptions) -> Result<RunningSimulator> {
    Err(Error::Unsupported { function: "simulator".into(), message: format!("simulator for {} not built yet", opts.integration) })
}
