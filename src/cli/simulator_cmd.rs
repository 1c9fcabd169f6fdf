//! `simulator:serve`: the offline simulator as a command.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The integration to simulate.
    #[arg(default_value = "anthropic")]
    pub integration: String,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port; 0 picks a free one. The base URL is the first line of stdout.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Added latency per response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Seed for generated content.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How long a Message Batch stays in progress, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub batch_delay: u64,
    /// Scripted faults, e.g. `create_message=429,529,ok`.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Accept only this exact API key.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Accept only this exact admin key.
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
}

pub async fn serve(_ctx: &Context, _args: ServeArgs) -> ExitCode {
    eprintln!("error: simulator:serve is being built (issue 4)");
    ExitCode::from(1)
}
