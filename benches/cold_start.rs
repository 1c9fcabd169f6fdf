//! Cold start of the CLI: `kosmo integrations:lua --eval 'return 1' --json`, run as a fresh process
//! each time, next to the official Python SDK's `import anthropic` alone.
//!
//! `cargo bench --bench cold_start` (optimized). Env: `BENCH_RUNS` (default 100), `KOSMO_SDK_PYTHON`
//! (a python with `anthropic`; the SDK half is skipped without it). Reports min / median / p90 in
//! milliseconds, and the same for `/bin/true` as the machine's process-spawn floor, so numbers
//! from a loaded machine can be read as ratios.

use std::process::{Command, Stdio};
use std::time::Instant;

fn time_runs(runs: usize, mut make: impl FnMut() -> Command) -> Option<Vec<f64>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut cmd = make();
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().ok()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            eprintln!("command failed: {status}");
            return None;
        }
    }
    times.sort_by(f64::total_cmp);
    Some(times)
}

fn report(label: &str, times: Option<Vec<f64>>) -> Option<f64> {
    let Some(t) = times else {
        println!("{label:<48} skipped");
        return None;
    };
    let pick = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
    let median = pick(0.5);
    println!(
        "{label:<48} min {:>8.2} ms   median {:>8.2} ms   p90 {:>8.2} ms   ({} runs)",
        t[0],
        median,
        pick(0.9),
        t.len()
    );
    Some(median)
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let config = std::env::temp_dir().join("kosmo-bench-cold-start");
    let kosmo = env!("CARGO_BIN_EXE_kosmo");
    let floor = report(
        "/bin/true (process spawn floor)",
        time_runs(runs, || Command::new("true")),
    );
    let lua = report(
        "kosmo integrations:lua --eval 'return 1' --json",
        time_runs(runs, || {
            let mut c = Command::new(kosmo);
            c.args(["integrations:lua", "--eval", "return 1", "--json"])
                .env("KOSMO_CONFIG_DIR", &config);
            c
        }),
    );
    report(
        "kosmo ... first touch of app.integrations",
        time_runs(runs, || {
            let mut c = Command::new(kosmo);
            c.args([
                "integrations:lua",
                "--eval",
                "return app.integrations.anthropic ~= nil",
                "--json",
            ])
            .env("KOSMO_CONFIG_DIR", &config);
            c
        }),
    );
    let python = std::env::var_os("KOSMO_SDK_PYTHON");
    let sdk = report(
        "python -c 'import anthropic' (SDK import only)",
        python.and_then(|py| {
            time_runs(runs.min(20), || {
                let mut c = Command::new(&py);
                c.args(["-c", "import anthropic"]);
                c
            })
        }),
    );
    if let (Some(l), Some(s)) = (lua, sdk) {
        println!(
            "kosmo cold start is {:.0}x faster than importing the SDK",
            s / l
        );
    }
    if let (Some(l), Some(f)) = (lua, floor) {
        println!("kosmo cold start is {:.1}x the process-spawn floor", l / f);
    }
}
