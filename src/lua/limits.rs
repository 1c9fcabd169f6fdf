//! Limits of one run: memory, CPU (an instruction budget), wall clock, integration calls, output.
//!
//! A limit, once hit, is *tripped* for the rest of the run: the instruction hook raises on every
//! tick and every catching primitive (`pcall`, `xpcall`, `coroutine.resume`, `coroutine.close`)
//! re-raises after it returns, so `pcall` cannot be used to keep a script alive past its limit.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mlua::{HookTriggers, Lua, VmState};

use crate::error::Error;

/// VM instructions counted as one second of CPU. Measured on the reference machine (Lua 5.4,
/// release build: simple loops run at 100-230 M instructions/s). The CPU limit trips on this
/// budget or on the time the VM actually ran (which also sees work inside C functions such as
/// `string.rep`), whichever comes first.
pub const INSTRUCTIONS_PER_SECOND: u64 = 150_000_000;

/// Branches of `parallel` that run at once unless `--parallel N` says otherwise. Measured with
/// benches/wire (docs/benchmarks.md): against a loopback server the Lua thread saturates at about
/// 16 calls in flight; 64 keeps it saturated when the server is slower, and stays far below what
/// a server or the connection pool would refuse.
pub const DEFAULT_PARALLEL: usize = 64;

/// The widest `--parallel` accepted: each branch in flight holds a connection.
pub const MAX_PARALLEL: usize = 1024;

/// How often (in VM instructions) the hook runs.
const HOOK_EVERY: u32 = 1000;

/// The configured limits of a run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes the Lua state may allocate.
    pub memory: usize,
    /// CPU budget in seconds, converted to instructions with [`INSTRUCTIONS_PER_SECOND`].
    pub cpu: f64,
    /// Wall-clock seconds, including time spent waiting on HTTP.
    pub timeout: f64,
    /// Integration calls per run.
    pub max_calls: u64,
    /// Bytes of `print`/`dump` output per run.
    pub max_output: usize,
    /// Branches of `parallel` that run at the same time (`--parallel N`, at most
    /// [`MAX_PARALLEL`]; the default is [`DEFAULT_PARALLEL`]).
    pub parallel: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 << 20,
            cpu: 30.0,
            timeout: 600.0,
            max_calls: 1000,
            max_output: 16 << 20,
            parallel: DEFAULT_PARALLEL,
        }
    }
}

/// Which limit stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory = 1,
    Cpu = 2,
    Timeout = 3,
    Calls = 4,
    Output = 5,
    /// The run is over (finalizers at close must not run on).
    Done = 6,
    /// SIGINT (Ctrl-C) arrived: not a limit, but it stops the run the same way.
    Interrupt = 7,
    /// SIGTERM arrived.
    Terminate = 8,
    /// SIGHUP arrived (the terminal went away).
    Hangup = 9,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Memory,
            2 => Kind::Cpu,
            3 => Kind::Timeout,
            4 => Kind::Calls,
            5 => Kind::Output,
            6 => Kind::Done,
            7 => Kind::Interrupt,
            8 => Kind::Terminate,
            9 => Kind::Hangup,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Cpu => "cpu",
            Kind::Timeout => "timeout",
            Kind::Calls => "calls",
            Kind::Output => "output",
            Kind::Done => "done",
            Kind::Interrupt => "interrupted",
            Kind::Terminate => "terminated",
            Kind::Hangup => "hangup",
        }
    }
}

/// The live state of the limits, shared by the hook, host functions and the watchdog.
#[derive(Debug)]
pub struct LimitState {
    pub limits: Limits,
    tripped: AtomicU8,
    instructions: AtomicU64,
    budget: u64,
    start: Mutex<Instant>,
    /// Microseconds since `start` of the last sign of life of the VM (hook tick or host boundary).
    last_tick_us: AtomicU64,
    /// Microseconds the VM spent running (between ticks, host waits excluded): the CPU budget's
    /// backstop for work done inside C functions, which the instruction count cannot see.
    vm_time_us: AtomicU64,
    /// Blocking host waits in progress (a terminal prompt, a write to stdout): the VM is not
    /// stalled while these wait, and the time is not VM time.
    in_host: AtomicUsize,
    /// The run's future is being polled (or the runtime is otherwise running Lua): only then can
    /// the VM stall. Between polls every branch is awaiting the host (HTTP) and nothing runs;
    /// during one, a branch may sit in a long C call while others wait on HTTP.
    running: AtomicUsize,
    pub calls: AtomicU64,
    pub output_bytes: AtomicUsize,
    peak_memory: AtomicUsize,
    /// Bytes host functions hold for the script right now (JSON text, regex results, copies):
    /// counted against the same memory limit as Lua's own allocations. See [`Reservation`].
    host_reserved: AtomicUsize,
    finished: AtomicBool,
}

impl LimitState {
    pub fn new(limits: Limits) -> Arc<LimitState> {
        let budget = (limits.cpu * INSTRUCTIONS_PER_SECOND as f64).min(u64::MAX as f64) as u64;
        Arc::new(LimitState {
            limits,
            tripped: AtomicU8::new(0),
            instructions: AtomicU64::new(0),
            budget,
            start: Mutex::new(Instant::now()),
            last_tick_us: AtomicU64::new(0),
            vm_time_us: AtomicU64::new(0),
            in_host: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            output_bytes: AtomicUsize::new(0),
            peak_memory: AtomicUsize::new(0),
            host_reserved: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
        })
    }

    /// Start a new evaluation (each REPL line has its own CPU, time, calls and output budget).
    pub fn reset(&self) {
        self.tripped.store(0, Ordering::SeqCst);
        self.instructions.store(0, Ordering::SeqCst);
        if let Ok(mut s) = self.start.lock() {
            *s = Instant::now();
        }
        self.last_tick_us.store(0, Ordering::SeqCst);
        self.vm_time_us.store(0, Ordering::SeqCst);
        self.calls.store(0, Ordering::SeqCst);
        self.output_bytes.store(0, Ordering::SeqCst);
        self.finished.store(false, Ordering::SeqCst);
    }

    pub fn start(&self) -> Instant {
        self.start
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|_| Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.start().elapsed()
    }

    pub fn deadline(&self) -> Instant {
        // A library caller may pass any float: a huge or odd timeout is "a century", never a panic.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let wait = Duration::try_from_secs_f64(self.limits.timeout)
            .unwrap_or(century)
            .min(century);
        let start = self.start();
        start.checked_add(wait).unwrap_or(start + century)
    }

    pub fn tripped(&self) -> Option<Kind> {
        Kind::from_u8(self.tripped.load(Ordering::SeqCst))
    }

    /// Record that a limit was hit; the first one wins.
    pub fn trip(&self, kind: Kind) {
        let _ = self
            .tripped
            .compare_exchange(0, kind as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Mark the run over: anything that still runs Lua (finalizers) stops at its next tick.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.trip(Kind::Done);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// The error of the tripped limit, if any.
    pub fn error(&self) -> Option<Error> {
        self.tripped().map(|k| self.error_for(k))
    }

    pub fn error_for(&self, kind: Kind) -> Error {
        let l = &self.limits;
        let message = match kind {
            Kind::Memory => format!(
                "memory limit exceeded: the script used more than {} (raise it with --memory-limit)",
                format_size(l.memory)
            ),
            Kind::Cpu => format!(
                "cpu limit exceeded: the script ran for more than {}s of CPU (raise it with --cpu-limit)",
                l.cpu
            ),
            Kind::Timeout => format!(
                "timeout: the script ran for more than {}s of wall-clock time, including HTTP waits (raise it with --timeout)",
                l.timeout
            ),
            Kind::Calls => format!(
                "calls limit exceeded: more than {} integration calls in one run (raise it with --max-calls)",
                l.max_calls
            ),
            Kind::Output => format!(
                "output limit exceeded: more than {} of print/dump output",
                format_size(l.max_output)
            ),
            Kind::Done => "the script has finished".to_string(),
            Kind::Interrupt => "interrupted by SIGINT".to_string(),
            Kind::Terminate => "interrupted by SIGTERM".to_string(),
            Kind::Hangup => "interrupted by SIGHUP".to_string(),
        };
        Error::Limit {
            limit: kind.as_str().to_string(),
            message,
        }
    }

    /// The envelope's `error` for what stopped the run: a limit (`limit_exceeded`) or a signal
    /// (`interrupted`, with the signal's name).
    pub fn error_json_for(&self, kind: Kind) -> serde_json::Value {
        let mut j = self.error_for(kind).to_json();
        let signal = match kind {
            Kind::Interrupt => "SIGINT",
            Kind::Terminate => "SIGTERM",
            Kind::Hangup => "SIGHUP",
            _ => return j,
        };
        if let serde_json::Value::Object(map) = &mut j {
            map.insert("code".into(), "interrupted".into());
            map.remove("limit");
            map.insert("signal".into(), signal.into());
        }
        j
    }

    /// [`LimitState::error_json_for`] the tripped kind, if any.
    pub fn error_json(&self) -> Option<serde_json::Value> {
        self.tripped().map(|k| self.error_json_for(k))
    }

    /// The error to raise in Lua when a limit is tripped.
    pub fn lua_error(&self) -> Option<mlua::Error> {
        self.error().map(mlua::Error::external)
    }

    fn now_us(&self) -> u64 {
        self.elapsed().as_micros() as u64
    }

    /// A host boundary: the VM stops or resumes running.
    pub fn tick(&self) {
        self.last_tick_us.store(self.now_us(), Ordering::Relaxed);
    }

    /// A host boundary that must not count as a sign of life (writing output): the time spent
    /// inside is not VM time, but the stall clock keeps running from where it was.
    pub fn enter_quiet(self: &Arc<Self>) -> QuietGuard {
        self.in_host.fetch_add(1, Ordering::SeqCst);
        QuietGuard {
            state: self.clone(),
            entered_us: self.now_us(),
        }
    }

    /// Reserve `bytes` of host memory against the run's memory limit (see [`Reservation`]).
    pub fn reserve(self: &Arc<Self>, lua: &Lua, bytes: usize) -> Result<Reservation, Error> {
        let mut r = Reservation {
            state: self.clone(),
            lua: lua.clone(),
            bytes: 0,
        };
        r.grow(bytes)?;
        Ok(r)
    }

    /// Run `f` with Lua's allocator unbounded, after reserving `bytes`, an upper bound of what
    /// `f` allocates in Lua, against the run's memory budget. With no allocator limit mlua
    /// skips the protected call it otherwise wraps around every table and string operation
    /// (most of the cost of building a decoded row or event); the reservation keeps the budget
    /// exact, because `f` cannot allocate more than it reserved. Answers `None`, without running
    /// `f` and without tripping anything, when the bound does not fit in what is left: the caller
    /// then builds under the limit, which fails exactly where the budget runs out.
    ///
    /// `f` must not run Lua code (no metamethods, no callbacks): it could allocate anything.
    pub fn unbounded<R>(
        self: &Arc<Self>,
        lua: &Lua,
        bytes: usize,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        let total = self.host_reserved().saturating_add(bytes);
        if lua.used_memory().saturating_add(total) > self.limits.memory {
            return None;
        }
        self.host_reserved.fetch_add(bytes, Ordering::SeqCst);
        let held = Reservation {
            state: self.clone(),
            lua: lua.clone(),
            bytes,
        };
        // 0 is "no limit"; dropping the reservation puts the limit back.
        let _ = lua.set_memory_limit(0);
        let out = f();
        drop(held);
        let used = lua.used_memory().saturating_add(self.host_reserved());
        self.note_memory(used);
        if used > self.limits.memory {
            // Only a growth of Lua's own tables outside the bound (its string table doubling)
            // gets here: over budget is over budget.
            self.trip(Kind::Memory);
        }
        Some(out)
    }

    pub fn host_reserved(&self) -> usize {
        self.host_reserved.load(Ordering::SeqCst)
    }

    /// A hook tick: the VM has been running since the last tick or boundary. Answers the VM
    /// time used so far.
    fn vm_tick(&self) -> Duration {
        let now = self.now_us();
        let prev = self.last_tick_us.swap(now, Ordering::Relaxed);
        let used = self
            .vm_time_us
            .fetch_add(now.saturating_sub(prev), Ordering::Relaxed)
            + now.saturating_sub(prev);
        Duration::from_micros(used)
    }

    /// Enter a blocking host wait (a terminal prompt): neither VM time nor a stall. For a host
    /// future use [`LimitState::host`], which holds this only while the future is polled.
    pub fn enter_host(self: &Arc<Self>) -> HostGuard {
        self.vm_tick();
        self.in_host.fetch_add(1, Ordering::SeqCst);
        HostGuard(self.clone())
    }

    /// Await a host future (an integration call, the next row): each poll of it is host work
    /// (a credential helper, decoding a response), neither VM time nor a stall; while it is
    /// pending, other branches of the script may run and are counted as usual.
    pub async fn host<F: std::future::Future>(self: &Arc<Self>, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            let _host = self.enter_host();
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// The VM runs (one poll of the run's future, or host code that runs Lua after it): the
    /// stall clock and the VM-time clock run until the guard is dropped.
    pub fn enter_running(self: &Arc<Self>) -> RunningGuard {
        self.tick();
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self.clone())
    }

    /// How long the VM has shown no sign of life while running (not between polls, not in a
    /// blocking host wait).
    pub fn stalled_for(&self) -> Option<Duration> {
        if self.running.load(Ordering::SeqCst) == 0 || self.in_host.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = self.last_tick_us.load(Ordering::Relaxed);
        Some(Duration::from_micros(self.now_us().saturating_sub(last)))
    }

    pub fn note_memory(&self, bytes: usize) {
        self.peak_memory.fetch_max(bytes, Ordering::Relaxed);
    }

    pub fn peak_memory(&self) -> usize {
        self.peak_memory.load(Ordering::Relaxed)
    }

    /// Count one integration call; trips `calls` when over the cap.
    pub fn count_call(&self) -> Result<(), Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.limits.max_calls {
            self.trip(Kind::Calls);
            return Err(self.error_for(Kind::Calls));
        }
        Ok(())
    }

    /// Account for `bytes` of output; trips `output` when over the cap.
    pub fn count_output(&self, bytes: usize) -> Result<(), Error> {
        let n = self.output_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if n > self.limits.max_output {
            self.trip(Kind::Output);
            return Err(self.error_for(Kind::Output));
        }
        Ok(())
    }
}

/// Leaves the running state when dropped, counting the time since the last tick as VM time.
pub struct RunningGuard(Arc<LimitState>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.vm_tick();
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Leaves the host wait when dropped.
pub struct HostGuard(Arc<LimitState>);

impl Drop for HostGuard {
    fn drop(&mut self) {
        self.0.in_host.fetch_sub(1, Ordering::SeqCst);
        self.0.tick();
    }
}

/// Leaves a quiet host boundary when dropped: the wait is moved out of both the VM time and the
/// stall clock (the last sign of life moves forward by the time spent waiting, no more).
pub struct QuietGuard {
    state: Arc<LimitState>,
    entered_us: u64,
}

impl Drop for QuietGuard {
    fn drop(&mut self) {
        let waited = self.state.now_us().saturating_sub(self.entered_us);
        self.state.last_tick_us.fetch_add(waited, Ordering::Relaxed);
        self.state.in_host.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Host memory held for the script, counted against `--memory-limit` together with Lua's own
/// allocations: while it is held, Lua's allocator limit is lowered by the reserved bytes, so the
/// host's buffer plus the Lua value built from it never exceed the one budget. Going over trips
/// the `memory` limit (like Lua running out of memory does). Released when dropped.
pub struct Reservation {
    state: Arc<LimitState>,
    lua: Lua,
    bytes: usize,
}

impl Reservation {
    /// Reserve `extra` more bytes.
    pub fn grow(&mut self, extra: usize) -> Result<(), Error> {
        if extra == 0 {
            return Ok(());
        }
        let st = &self.state;
        let total = st
            .host_reserved
            .fetch_add(extra, Ordering::SeqCst)
            .saturating_add(extra);
        self.bytes = self.bytes.saturating_add(extra);
        let limit = st.limits.memory;
        let mut used = self.lua.used_memory();
        if used.saturating_add(total) > limit {
            // Garbage counts in `used_memory` until collected: collect before refusing, as Lua's
            // own allocator does before it reports an out-of-memory error.
            let _ = self.lua.gc_collect();
            used = self.lua.used_memory();
        }
        if used.saturating_add(total) > limit {
            st.trip(Kind::Memory);
            return Err(st.error_for(Kind::Memory));
        }
        st.note_memory(used.saturating_add(total));
        self.apply();
        Ok(())
    }

    /// Make sure at least `total` bytes are reserved.
    pub fn ensure(&mut self, total: usize) -> Result<(), Error> {
        self.grow(total.saturating_sub(self.bytes))
    }

    fn apply(&self) {
        let st = &self.state;
        let reserved = st.host_reserved.load(Ordering::SeqCst);
        // 0 would mean "no limit" to the allocator.
        let lua_limit = st.limits.memory.saturating_sub(reserved).max(1);
        let _ = self.lua.set_memory_limit(lua_limit);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.state
            .host_reserved
            .fetch_sub(self.bytes, Ordering::SeqCst);
        self.bytes = 0;
        self.apply();
    }
}

/// Install the memory limit and the instruction hook on a fresh state.
pub fn install(lua: &Lua, state: &Arc<LimitState>) -> mlua::Result<()> {
    lua.set_memory_limit(state.limits.memory)?;
    let st = state.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |lua, _debug| {
            if let Some(e) = st.lua_error() {
                return Err(e);
            }
            let n = st
                .instructions
                .fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed)
                + u64::from(HOOK_EVERY);
            let vm_time = st.vm_tick();
            st.note_memory(lua.used_memory().saturating_add(st.host_reserved()));
            if n > st.budget || vm_time.as_secs_f64() > st.limits.cpu {
                st.trip(Kind::Cpu);
            } else if Instant::now() > st.deadline() {
                st.trip(Kind::Timeout);
            }
            match st.lua_error() {
                Some(e) => Err(e),
                None => Ok(VmState::Continue),
            }
        },
    )
}

/// Parse a size: plain bytes or a number with a unit (`K`, `M`, `G`, optional `B`/`iB`; 1024-based).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_lc = unit.trim().to_ascii_lowercase();
    let mult: f64 = match unit_lc.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "invalid size '{text}': use bytes or a unit, e.g. 64M or 1G"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size '{text}': use bytes or a unit, e.g. 64M or 1G"))?;
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > (1u64 << 46) as f64 {
        return Err(format!("invalid size '{text}': out of range"));
    }
    Ok(bytes as usize)
}

/// Parse seconds: a positive number (`30`, `0.5`, `2s`).
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let t = t.strip_suffix('s').unwrap_or(t);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(format!(
            "invalid number of seconds '{text}': use a positive number, e.g. 30 or 0.5"
        )),
    }
}

/// Parse a count (`0` allowed).
pub fn parse_count(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("invalid count '{text}': use a whole number, e.g. 100"))
}

/// `67108864` → `64 MiB`.
pub fn format_size(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("64X").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-5M").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn seconds_and_counts() {
        assert_eq!(parse_seconds("30").unwrap(), 30.0);
        assert_eq!(parse_seconds("0.5").unwrap(), 0.5);
        assert_eq!(parse_seconds("2s").unwrap(), 2.0);
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("ten").is_err());
        assert_eq!(parse_count("0").unwrap(), 0);
        assert!(parse_count("-1").is_err());
        assert!(parse_count("1.5").is_err());
    }

    #[test]
    fn reservations_share_the_lua_memory_limit() {
        let st = LimitState::new(Limits {
            memory: 8 << 20,
            ..Limits::default()
        });
        let lua = Lua::new();
        install(&lua, &st).unwrap();
        // Half the budget held by the host: Lua cannot build a 3 MiB string (6 MiB with its buffer).
        let held = st.reserve(&lua, 4 << 20).unwrap();
        assert_eq!(st.host_reserved(), 4 << 20);
        let big = lua
            .load("return string.rep('x', 3 * 1024 * 1024)")
            .eval::<mlua::Value>();
        assert!(big.is_err());
        drop(held);
        assert_eq!(st.host_reserved(), 0);
        // Released: the same allocation fits again.
        let s: mlua::LuaString = lua
            .load("return string.rep('x', 3 * 1024 * 1024)")
            .eval()
            .unwrap();
        assert_eq!(s.as_bytes().len(), 3 << 20);
        drop(s);
        // More than the budget trips the memory limit and releases what it took.
        let r = st.reserve(&lua, 9 << 20);
        assert!(r.is_err());
        assert_eq!(st.tripped(), Some(Kind::Memory));
        assert_eq!(st.host_reserved(), 0);
    }

    #[test]
    fn first_trip_wins() {
        let s = LimitState::new(Limits::default());
        assert!(s.tripped().is_none());
        s.trip(Kind::Cpu);
        s.trip(Kind::Memory);
        assert_eq!(s.tripped(), Some(Kind::Cpu));
        let e = s.error().unwrap();
        assert_eq!(e.code(), "limit_exceeded");
        assert_eq!(e.to_json()["limit"], "cpu");
        s.reset();
        assert!(s.tripped().is_none());
    }
}
