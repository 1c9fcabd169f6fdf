//! `simulator:serve`: the offline simulator as a command.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use super::Context;
use crate::simulator::faults::FaultPlan;
use crate::simulator::{self, SimulatorOptions};

const FAULTS_HELP: &str = "\
Examples:
  kosmo simulator:serve NAME --port 0
  kosmo simulator:serve NAME --mock --key api_key=sk-test
  kosmo simulator:serve NAME --set batch_delay_ms=500 --faults 'FUNCTION=429'

Fault injection (--faults SPEC, or per request the header `x-kosmo-fault: STEP`):

  SPEC  = RULE;RULE...       RULE = FUNCTION=STEP,STEP,...   (FUNCTION may be `*`: any route)
  STEP  = KIND[:KEY=VALUE...][*COUNT]

  Each request to FUNCTION takes the next STEP; when the sequence is used up, requests are
  answered normally. KINDs:
    ok                    answer normally
    400..599              error in the API's envelope; options retry-after=S (429 defaults
                          to 1), retry-after-ms=N, should-retry=true|false, message=TEXT
    reset                 drop the connection (TCP reset) before any response
    stall[:ms=N]          answer after N ms; without ms never (the client must time out)
    html[:status=N]       an HTML error page (default 502), as a proxy would send
    truncated             the real JSON body cut in half
    eof[:after=N][:abort=true]   a stream ends after N events without its final ones
                          (abort: the connection drops); other bodies announce their full
                          length, send half and drop the connection
    hang[:after=N]        a stream sends N events (other bodies half), then nothing more
    error-event[:after=N][:type=T]   a stream sends N events, then an `error` event
                          (default overloaded_error)

  A bad SPEC (unknown function, kind or option, or a bad value) is refused: exit 2.
  Example: --faults 'create_message=429:retry-after=2,529,ok;get_model=reset'
  At run time: POST /_kosmo/faults (body: SPEC) appends, GET shows what is left, DELETE clears.
  docs/simulator.md has the full reference.";

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = FAULTS_HELP)]
pub struct ServeArgs {
    /// The integration to simulate (default: the first built-in one).
    pub integration: Option<String>,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port; 0 picks a free one. The base URL is the first line of stdout.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Added latency per response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Seed for generated content (same input + same seed = same reply).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mock mode: every well-formed request gets a schema-valid answer (no 404 for unknown
    /// ids, no refusals across parameters, unknown beta names accepted); auth and schema
    /// validation still apply. For running SDK test suites.
    #[arg(long)]
    pub mock: bool,
    /// Accept only this exact value for the credential NAME (repeatable), e.g.
    /// `--key api_key=sk-test-1` (default: any key with the right prefix).
    #[arg(long = "key", value_name = "NAME=VALUE")]
    pub keys: Vec<String>,
    /// An option of the integration's simulated behaviours (repeatable), e.g.
    /// `--set batch_delay_ms=300`; an unknown NAME lists the known ones.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub settings: Vec<String>,
    /// Alias of `--set batch_delay_ms=MS`.
    #[arg(long, value_name = "MS")]
    pub batch_delay: Option<u64>,
    /// Scripted faults, e.g. `create_message=429:retry-after=1,529,ok;get_model=reset`
    /// (see --help for the grammar).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Alias of `--key api_key=KEY`.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Alias of `--key admin_key=KEY`.
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
}

/// `NAME=VALUE` pairs of a repeatable flag; later ones win.
fn pairs(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), val.to_string());
            }
            _ => return Err(format!("{flag} {v}: expected NAME=VALUE")),
        }
    }
    Ok(out)
}

impl ServeArgs {
    /// The options, with the old flags folded into the generic ones (an explicit
    /// `--key` / `--set` of the same name wins over an alias).
    pub fn options(&self) -> Result<SimulatorOptions, String> {
        let mut keys = BTreeMap::new();
        if let Some(k) = &self.api_key {
            keys.insert("api_key".to_string(), k.clone());
        }
        if let Some(k) = &self.admin_key {
            keys.insert("admin_key".to_string(), k.clone());
        }
        keys.extend(pairs("--key", &self.keys)?);
        let mut settings = BTreeMap::new();
        if let Some(ms) = self.batch_delay {
            settings.insert("batch_delay_ms".to_string(), ms.to_string());
        }
        settings.extend(pairs("--set", &self.settings)?);
        Ok(SimulatorOptions {
            integration: self.integration.clone().unwrap_or_default(),
            host: self.host.clone(),
            port: self.port,
            latency_ms: self.latency,
            seed: self.seed,
            faults: self.faults.clone(),
            keys,
            settings,
            mock: self.mock,
        })
    }
}

pub async fn serve(ctx: &Context, args: ServeArgs) -> ExitCode {
    let registry = match ctx.registry() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // A bad --faults spec, --key or --set is a usage error (exit 2), found before anything
    // listens.
    let opts = match args.options() {
        Ok(o) => o,
        Err(m) => {
            eprintln!("error: {m}");
            return ExitCode::from(2);
        }
    };
    let integration = opts.integration_name().to_string();
    let integ = match registry.require(&integration) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(spec) = opts.faults.as_deref()
        && let Err(m) = FaultPlan::parse(spec, integ)
    {
        eprintln!("error: --faults: {m}");
        return ExitCode::from(2);
    }
    if let Err(m) = simulator::server::prepare(integ, &opts) {
        eprintln!("error: {m}");
        return ExitCode::from(2);
    }
    let signals = Signals::install();
    let sim = match simulator::start(registry, opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", sim.base_url)
            .and_then(|_| out.flush())
            .is_err()
        {
            sim.shutdown().await;
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "kosmo simulator for '{integration}' listening on {} (Ctrl-C to stop)",
        sim.base_url
    );
    signals.wait().await;
    eprintln!("kosmo simulator: shutting down");
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGINT and SIGTERM listeners, installed before the base URL is printed: a script that reads
/// the first line and at once sends a signal must get a clean shutdown, not the default death.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            let int = async {
                match self.int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            let term = async {
                match self.term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => {}
                _ = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
