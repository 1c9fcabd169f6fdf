//! The sandbox battery: escape attempts (files, processes, environment, bytecode, metatables)
//! and exhaustion attacks (loops, recursion, memory, output, limits swallowed by `pcall`).
//! Every one must be contained and reported in a well-formed envelope; the host never crashes.

use serde_json::{Value, json};

use tempfile::TempDir;

use super::{Run, assert_envelope, run};
use crate::support::Kosmo;

enum Expect {
    /// Stopped by this limit (`limit_exceeded`, `limit: <name>`).
    Limit(&'static str),
    /// Failed with this error code.
    Fails(&'static str),
    /// Succeeded with exactly this result list.
    Result(Value),
    /// Any outcome, as long as the envelope is intact.
    Contained,
}

struct Case {
    name: &'static str,
    code: &'static str,
    flags: &'static [&'static str],
    expect: Expect,
}

/// `Expect::Result` from the JSON text of the result list.
fn result(json_text: &str) -> Expect {
    Expect::Result(serde_json::from_str(json_text).expect("the expected result is JSON"))
}

fn case(name: &'static str, code: &'static str, expect: Expect) -> Case {
    Case {
        name,
        code,
        flags: &[],
        expect,
    }
}

fn with(
    name: &'static str,
    code: &'static str,
    flags: &'static [&'static str],
    expect: Expect,
) -> Case {
    Case {
        name,
        code,
        flags,
        expect,
    }
}

fn check(c: &Case) -> Result<(), String> {
    let mut args = vec!["integrations:lua", "--eval", c.code, "--json"];
    // Budgets far from each other, so a loaded machine cannot change which limit fires. The CPU
    // budget is VM time measured on the wall clock (host work a script asks for, such as a 30 MB
    // `json.decode`, counts too), so load stretches it: a legitimate 8 s of work took over 60 s
    // of it on a busy 2-core machine. So: a case that expects the CPU limit gets a small CPU
    // budget and a far wall clock; a case that ends on its own (a result, an error, or another
    // limit) gets a CPU budget ten times what any of them needs; only `Contained` cases, some of
    // which loop forever, keep 60 s so the battery stays short.
    let (cpu, wall) = match c.expect {
        Expect::Limit("cpu") => ("2", "900"),
        Expect::Contained => ("60", "900"),
        _ => ("600", "900"),
    };
    if !c.flags.contains(&"--cpu-limit") {
        args.extend(["--cpu-limit", cpu]);
    }
    if !c.flags.contains(&"--timeout") {
        args.extend(["--timeout", wall]);
    }
    args.extend_from_slice(c.flags);
    // No timing check here: kosmo's own limits end every run, and a hang is caught by the
    // harness's guard (`support::HANG_GUARD`, far above these budgets) as a missing envelope.
    let r: Run = run(&args);
    let env = r.env.clone();
    std::panic::catch_unwind(|| assert_envelope(&r)).map_err(|_| {
        format!(
            "{}: bad envelope: {}\nstderr: {}",
            c.name, r.stdout, r.stderr
        )
    })?;
    if r.stderr.contains("panicked") {
        return Err(format!("{}: the host panicked: {}", c.name, r.stderr));
    }
    let err = &env["error"];
    match &c.expect {
        Expect::Limit(kind) => {
            if err["code"] != "limit_exceeded" || err["limit"] != *kind {
                return Err(format!("{}: expected limit {kind}, got {env}", c.name));
            }
        }
        Expect::Fails(code) => {
            if err["code"] != *code {
                return Err(format!("{}: expected error {code}, got {env}", c.name));
            }
        }
        Expect::Result(v) => {
            if env["success"] != true || env["result"] != *v {
                return Err(format!("{}: expected result {v}, got {env}", c.name));
            }
        }
        Expect::Contained => {}
    }
    Ok(())
}

fn run_battery(cases: Vec<Case>) {
    // A few workers, not one process per case: dozens of memory- and CPU-hungry runs at once
    // on a busy machine would only test the machine.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(c) = cases.get(i) else { break };
                        match std::panic::catch_unwind(|| check(c)) {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => failed.push(e),
                            Err(_) => failed.push(format!("{}: the check panicked", c.name)),
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// How many battery cases run at once.
const WORKERS: usize = 3;

#[test]
fn escapes_files_processes_environment_bytecode() {
    use Expect::*;
    run_battery(vec![
        case(
            "no io/package/debug",
            "return io == nil and package == nil and debug == nil",
            Result(json!([true])),
        ),
        case(
            "os.execute",
            "os.execute('touch /tmp/kosmo_sandbox_pwned')",
            Fails("lua_error"),
        ),
        case("os.getenv", "return os.getenv('HOME')", Fails("lua_error")),
        case("os.exit", "os.exit(0)", Fails("lua_error")),
        case(
            "rest of os",
            "return os.remove, os.rename, os.tmpname, os.setlocale",
            Result(json!([null, null, null, null])),
        ),
        case(
            "os keeps clock",
            "return type(os.time()), type(os.clock()), type(os.date('%Y'))",
            Result(json!(["number", "number", "string"])),
        ),
        case("require", "require('os')", Fails("lua_error")),
        case("dofile", "dofile('/etc/passwd')", Fails("lua_error")),
        case(
            "loadfile",
            "return loadfile('/etc/passwd')",
            Fails("lua_error"),
        ),
        case(
            "collectgarbage",
            "collectgarbage('count')",
            Fails("lua_error"),
        ),
        case(
            "io via _G and _ENV",
            "return _G.io, _ENV.io, _G.package",
            Result(json!([null, null, null])),
        ),
        case(
            "string.dump",
            "return string.dump(function() end)",
            Fails("lua_error"),
        ),
        case(
            "binary chunk through load",
            "local f, e = load(string.char(27) .. 'LuaT\\0') return f == nil and e:find('binary') ~= nil",
            Result(json!([true])),
        ),
        case(
            "load mode b",
            "local f = load('return 1', 'x', 'b') return f == nil",
            Result(json!([true])),
        ),
        case(
            "binary chunk through a reader",
            "local i = 0 local f = load(function() i = i + 1 if i == 1 then return string.char(27) end end) return f == nil",
            Result(json!([true])),
        ),
        case(
            "load with an env",
            "return load('return x', 'c', 't', {x = 5})()",
            Result(json!([5])),
        ),
        case(
            "load default env is the sandbox",
            "return load('return io, os.execute')()",
            Result(json!([null, null])),
        ),
        case("top-level yield", "coroutine.yield(1)", Fails("lua_error")),
    ]);
    assert!(!std::path::Path::new("/tmp/kosmo_sandbox_pwned").exists());
}

#[test]
fn metatable_tampering() {
    use Expect::*;
    run_battery(vec![
        case(
            "string metatable is locked",
            "return getmetatable('')",
            Result(json!([false])),
        ),
        case(
            "string __index override",
            "getmetatable('').__index = function() return os end",
            Fails("lua_error"),
        ),
        case(
            "rawset on the string metatable",
            "rawset(getmetatable(''), '__index', {})",
            Fails("lua_error"),
        ),
        case(
            "string table tampering stays in the script",
            "string.rep = nil string.format = nil table.concat = nil return json.encode({a = {1}}), regex.gsub('ab', 'b', 'c')",
            Result(json!(["{\"a\":[1]}", "ac", 1])),
        ),
        case(
            "rawset on app",
            "rawset(app, 'integrations', {})",
            Fails("lua_error"),
        ),
        case(
            "setmetatable on app",
            "setmetatable(app.integrations, {})",
            Fails("lua_error"),
        ),
        case(
            "assign into a namespace",
            "app.integrations.anthropic.create_message = print",
            Fails("lua_error"),
        ),
        case(
            "assign into app",
            "app.integrations = {}",
            Fails("lua_error"),
        ),
        case(
            "app metatable hidden",
            "return type(getmetatable(app.integrations)) ~= 'table'",
            Result(json!([true])),
        ),
        case(
            "hostile _G metatable does not break helpers",
            "setmetatable(_G, {__index = function(_, k) error('no ' .. k) end, __newindex = function() error('ro') end}) return json.encode({1}), dump(2)",
            Result(json!(["[1]", 2])),
        ),
        case(
            "globals wiped",
            "_G = nil print = nil pcall = nil return 1",
            Result(json!([1])),
        ),
        case(
            "json marker metatable tampering",
            "getmetatable(json.array{}).__index = function() return os end return json.encode(json.array{1})",
            Result(json!(["[1]"])),
        ),
        case(
            "error table metatable locked",
            "local ok, e = pcall(app.integrations.anthropic.nope) return 1",
            Fails("unknown_function"),
        ),
        case(
            "__index recursion",
            "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x",
            Fails("lua_error"),
        ),
        case(
            "print of a table whose __tostring errors",
            "print(setmetatable({}, {__tostring = function() error('ts') end}))",
            Fails("lua_error"),
        ),
        case(
            "error object whose __tostring errors",
            "error(setmetatable({}, {__tostring = function() error('x') end}))",
            Fails("lua_error"),
        ),
        case(
            "error object whose __tostring returns a table",
            "error(setmetatable({}, {__tostring = function() return {} end}))",
            Fails("lua_error"),
        ),
        with(
            "error object whose __tostring loops",
            "error(setmetatable({}, {__tostring = function() while true do end end}))",
            &["--cpu-limit", "0.5"],
            Contained,
        ),
        case(
            "huge error message",
            "error(string.rep('x', 1e7))",
            Fails("lua_error"),
        ),
    ]);
}

#[test]
fn cpu_and_time_exhaustion() {
    use Expect::*;
    run_battery(vec![
        with(
            "infinite loop",
            "while true do end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "pcall swallowing the cpu limit",
            "while true do pcall(function() while true do end end) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "xpcall with a swallowing handler",
            "while true do xpcall(function() while true do end end, function(e) return e end) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "nested pcalls",
            "local function f() while true do pcall(function() pcall(function() while true do end end) end) end end while true do pcall(f) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "a coroutine that never yields",
            "local co = coroutine.create(function() while true do end end) print(coroutine.resume(co)) return 'survived'",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "coroutine.wrap loop",
            "coroutine.wrap(function() while true do end end)()",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "resume loop catching the limit",
            "while true do local co = coroutine.create(function() while true do end end) coroutine.resume(co) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "coroutine.close swallowing",
            "while true do local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() end}) while true do end end) coroutine.resume(co) coroutine.close(co) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "__close handler that loops",
            "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end",
            &["--cpu-limit", "0.5"],
            Limit("cpu"),
        ),
        with(
            "catastrophic Lua pattern (one long C call)",
            "return ('a'):rep(30000):find('.-.-.-.-.-.-b')",
            &["--cpu-limit", "1"],
            Limit("cpu"),
        ),
        with(
            "wall clock",
            "while true do end",
            &["--timeout", "0.5", "--cpu-limit", "100"],
            Limit("timeout"),
        ),
        with(
            "wall clock swallowed by pcall",
            "while true do pcall(function() while true do end end) end",
            &["--timeout", "0.5", "--cpu-limit", "100"],
            Limit("timeout"),
        ),
        case(
            "finalizers are refused (hooks cannot stop them)",
            "setmetatable({}, {__gc = function() while true do end end}) return 1",
            Fails("lua_error"),
        ),
        case(
            "__gc added after setmetatable never runs",
            "local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end return 1",
            Result(json!([1])),
        ),
        case(
            "catastrophic regex is linear",
            "return regex.match(string.rep('a', 100000) .. 'b', '(a*)*$') ~= nil",
            Result(json!([true])),
        ),
        case(
            "huge regex is refused",
            "return (pcall(regex.match, 'a', '(?:a{1000}){1000}'))",
            Result(json!([false])),
        ),
        with(
            "calls limit swallowed by pcall",
            "for i = 1, 5 do pcall(app.integrations.anthropic.get_model, 'm') end return 'survived'",
            &["--dry-run", "--max-calls", "2"],
            Limit("calls"),
        ),
    ]);
}

#[test]
fn memory_recursion_and_output_exhaustion() {
    use Expect::*;
    run_battery(vec![
        with(
            "string doubling",
            "local s = 'x' while true do s = s .. s end",
            &["--memory-limit", "16M"],
            Limit("memory"),
        ),
        case(
            "string.rep bomb",
            "return string.rep('x', 2^30)",
            Limit("memory"),
        ),
        case(
            "string.rep bomb swallowed",
            "local ok = pcall(string.rep, 'x', 2^30) return 'survived'",
            Limit("memory"),
        ),
        with(
            "table growth",
            "local t = {} for i = 1, 1e9 do t[i] = i end",
            &["--memory-limit", "16M"],
            Limit("memory"),
        ),
        with(
            "table growth swallowed in a loop",
            "while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = {i} end end) end",
            &["--memory-limit", "16M"],
            Limit("memory"),
        ),
        with(
            "closure bomb",
            "local t = {} while true do t[#t + 1] = function() return t end end",
            &["--memory-limit", "16M"],
            Limit("memory"),
        ),
        with(
            "coroutine bomb",
            "local t = {} while true do t[#t + 1] = coroutine.create(function() end) end",
            &["--memory-limit", "16M"],
            Limit("memory"),
        ),
        with(
            "small memory limit",
            "local t = {} for i = 1, 1e6 do t[i] = tostring(i) end",
            &["--memory-limit", "1M"],
            Limit("memory"),
        ),
        with(
            "deep recursion",
            "local function f() return 1 + f() end return f()",
            &["--memory-limit", "16M"],
            Contained,
        ),
        case(
            "recursion through pcall",
            "local function f() pcall(f) end f() return 1",
            Contained,
        ),
        case(
            "recursion through a host callback (regex.gsub)",
            "local function f(n) return regex.gsub('a', 'a', function() return f(n + 1) end) end return f(0)",
            Fails("lua_error"),
        ),
        case(
            "recursion through print and __tostring",
            "local t t = setmetatable({}, {__tostring = function() print(t) return 'x' end}) print(t)",
            Fails("lua_error"),
        ),
        case(
            "recursion through parallel",
            "local function f() return parallel(f) end return f()",
            Fails("lua_error"),
        ),
        case(
            "recursion through coroutine.wrap",
            "local function f() return coroutine.wrap(f)() end return f()",
            Fails("lua_error"),
        ),
        case(
            "string.format width",
            "return string.format('%099999999d', 1)",
            Fails("lua_error"),
        ),
        case(
            "unpack bomb",
            "return select('#', table.unpack({}, 1, 1e8))",
            Fails("lua_error"),
        ),
        case(
            "os.date bad format",
            "return os.date('%Ez')",
            Fails("lua_error"),
        ),
        case(
            "json.encode of deep nesting",
            "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end return (pcall(json.encode, t))",
            Result(json!([false])),
        ),
        case(
            "json.encode of a cycle",
            "local t = {} t.t = t return (pcall(json.encode, t))",
            Result(json!([false])),
        ),
        case(
            "json.decode of deep nesting",
            "return (pcall(json.decode, string.rep('[', 100000)))",
            Result(json!([false])),
        ),
        case(
            "dump of deep nesting",
            "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end dump(t) return 1",
            Result(json!([1])),
        ),
        case(
            "print flood",
            "while true do print(('x'):rep(100000)) end",
            Limit("output"),
        ),
        case(
            "print flood swallowed",
            "while true do pcall(print, ('x'):rep(100000)) end",
            Limit("output"),
        ),
        case(
            "one huge print",
            "print(('x'):rep(20 * 1024 * 1024))",
            Limit("output"),
        ),
    ]);
}

/// Small in Lua, huge on the host: shared references and replacement blow-ups must be refused
/// before the host allocates them.
#[test]
fn host_side_amplification() {
    use Expect::*;
    run_battery(vec![
        case(
            "json.encode of a shared big string (pcall cannot catch it)",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 1000 do t[i] = s end return (pcall(json.encode, t))",
            Limit("memory"),
        ),
        case(
            "returning a shared big string many times",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 200 do t[i] = s end return #t, t",
            Contained,
        ),
        case(
            "dump of a shared big string",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 1000 do t[i] = s end dump(t)",
            Contained,
        ),
        case(
            "print of many big arguments",
            "local s = ('x'):rep(3e7) print(s, s, s, s, s, s, s, s, s, s)",
            Limit("output"),
        ),
        case(
            "regex.gsub blow-up (pcall cannot catch it)",
            "local s = ('x'):rep(1e6) return (pcall(regex.gsub, s, '.', ('y'):rep(10000)))",
            Limit("memory"),
        ),
        case(
            "many return values",
            "local s = ('x'):rep(3e7) return table.unpack((function() local t = {} for i = 1, 5000 do t[i] = s end return t end)())",
            Contained,
        ),
    ]);
}

/// Host-side work done for the script (JSON, regex, dump) counts against `--memory-limit`: it stops
/// with the memory limit near the budget, never an abort and never gigabytes first. Each case
/// gets a CPU budget (60 s) it cannot reach, so only the memory limit can fire.
#[test]
fn host_side_memory_in_budget() {
    use Expect::*;
    run_battery(vec![
        case(
            "json.decode of a 30 MB document",
            "local s = '[' .. string.rep('{\"a\":[1,2]},', 2.5e6) .. '1]' return #json.decode(s)",
            Limit("memory"),
        ),
        case(
            "json.decode of a 30 MB document under pcall",
            "local s = '[' .. string.rep('{\"a\":[1,2]},', 2.5e6) .. '1]' return pcall(json.decode, s)",
            Limit("memory"),
        ),
        with(
            "json.decode of a 30 MB document fits a bigger budget",
            "local s = '[' .. string.rep('{\"a\":[1,2]},', 2.5e6) .. '1]' local t = json.decode(s) return #t, t[7].a[2], json.is_null(json.decode('null'))",
            &["--memory-limit", "1G"],
            Result(json!([2_500_001, 2, true])),
        ),
        case(
            "json.encode of a shared 10 MB string",
            "local s = ('x'):rep(1e7) local t = {} for i = 1, 100 do t[i] = s end return #json.encode(t)",
            Limit("memory"),
        ),
        case(
            "json.encode with pretty output of a shared string",
            "local s = ('x'):rep(1e7) local t = {} for i = 1, 100 do t[i] = {s} end return #json.encode(t, {pretty = true})",
            Limit("memory"),
        ),
        case(
            "json round trip keeps shapes, order and nulls",
            "local t = json.decode('{\"b\":[1,2,null],\"a\":{},\"c\":[],\"d\":1.5,\"e\":\"\\\\u00e9\"}') return json.encode(t), json.encode({z = 1, y = {true, false}}, {pretty = true})",
            Result(json!([
                "{\"a\":{},\"b\":[1,2,null],\"c\":[],\"d\":1.5,\"e\":\"é\"}",
                "{\n  \"y\": [\n    true,\n    false\n  ],\n  \"z\": 1\n}"
            ])),
        ),
        with(
            "json.encode of an array of two million strings",
            "local t = {} for i = 1, 2e6 do t[i] = 'x' end return #json.encode(t)",
            &["--memory-limit", "256M"],
            Result(json!([8_000_001])),
        ),
        case(
            "json.decode errors stay catchable",
            "local ok, e = pcall(json.decode, '[1,') return ok, (e:find('json.decode: invalid JSON', 1, true) ~= nil)",
            Result(json!([false, true])),
        ),
        case(
            "regex.split into ten million pieces",
            "return #regex.split(string.rep('a', 1e7), '')",
            Limit("memory"),
        ),
        with(
            "regex.split of the same string fits a bigger budget",
            "return #regex.split(string.rep('a', 1e6), '')",
            &["--memory-limit", "512M"],
            Result(json!([1_000_002])),
        ),
        case(
            "regex.gsub that grows a 1 MB string a hundredfold",
            "local s = ('x'):rep(1e6) return #(regex.gsub(s, '.', ('y'):rep(100)))",
            Limit("memory"),
        ),
        with(
            "dump of a shared big string over the memory left",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 1000 do t[i] = s end dump(t)",
            &["--memory-limit", "40M"],
            Limit("memory"),
        ),
        case(
            "dump of a shared big string over the output left",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 1000 do t[i] = s end dump(t)",
            Limit("output"),
        ),
        with(
            "print of a table holding a shared big string",
            "local s = ('x'):rep(3e7) local t = {} for i = 1, 1000 do t[i] = s end print(t)",
            &["--memory-limit", "40M"],
            Limit("memory"),
        ),
    ]);
}

/// The CPU limit holds where the instruction hook used to be off or blind: message handlers,
/// `__close` and `__tostring` metamethods, an error object that loops when described, and a
/// CPU-bound branch beside an integration call that is waiting.
#[test]
fn cpu_limit_in_handlers_metamethods_and_beside_calls() {
    use Expect::*;
    run_battery(vec![
        case(
            "xpcall message handler that loops",
            "xpcall(error, function(e) while true do end end)",
            Limit("cpu"),
        ),
        case(
            "xpcall handler that loops after the limit tripped",
            "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
            Limit("cpu"),
        ),
        case(
            "xpcall handlers still run for ordinary errors",
            "return xpcall(error, function(e) return 'handled: ' .. e end, 'boom')",
            Result(json!([false, "handled: boom"])),
        ),
        case(
            "error object whose __tostring loops",
            "error(setmetatable({}, {__tostring = function() while true do end end}))",
            Limit("cpu"),
        ),
        case(
            "print of a value whose __tostring loops",
            "print(setmetatable({}, {__tostring = function() while true do end end}))",
            Limit("cpu"),
        ),
        case(
            "__close that loops while an error unwinds",
            "pcall(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) error('x') end) return 'survived'",
            Limit("cpu"),
        ),
        case(
            "__close that loops when a coroutine is closed",
            "local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) coroutine.yield() end) coroutine.resume(co) coroutine.close(co)",
            Limit("cpu"),
        ),
        with(
            "a CPU-bound branch beside a waiting call",
            "local a = app.integrations.anthropic a.list_models{} return parallel(function() while true do end end, function() return a.wait_for_message_batch{id = 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF'} end)",
            &["--offline"],
            Limit("cpu"),
        ),
        with(
            "a waiting call beside a CPU-bound branch",
            "local a = app.integrations.anthropic a.list_models{} return parallel(function() return a.wait_for_message_batch{id = 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF'} end, function() while true do end end)",
            &["--offline"],
            Limit("cpu"),
        ),
        with(
            "one long C call beside a waiting call (the watchdog sees it)",
            "local a = app.integrations.anthropic a.list_models{} return parallel(function() return a.wait_for_message_batch{id = 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF'} end, function() return ('a'):rep(30000):find('.-.-.-.-.-.-b') end)",
            &["--offline"],
            Limit("cpu"),
        ),
        with(
            "waiting on a call is not CPU",
            "local a = app.integrations.anthropic return parallel(function() return (pcall(a.wait_for_message_batch, {id = 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF', timeout_seconds = 2, interval_seconds = 0.5})) end, function() return 1 end)",
            &["--offline", "--cpu-limit", "1"],
            Result(json!([false, 1])),
        ),
    ]);
}

/// Output is no sign of life: a loop of long C calls that prints between them (text mode, where
/// `print` writes to stdout) still reaches its CPU limit instead of running to the wall clock.
#[test]
fn print_does_not_reset_the_cpu_clock() {
    let r = run(&[
        "integrations:lua",
        "--eval",
        "while true do print(#(('a'):rep(3e6):rep(3))) end",
        "--cpu-limit",
        "2",
        "--timeout",
        "120",
    ]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("cpu limit exceeded") && r.stderr.contains("[limit_exceeded]"),
        "stderr: {}",
        r.stderr
    );
}

/// Escape and exhaustion attempts of a second, independent battery.
fn second_battery() -> Vec<Case> {
    use Expect::*;
    vec![
        case(
            "rawget _G",
            "return rawget(_G, 'io'), rawget(_G, 'package'), rawget(_G, 'debug'), rawget(_G, 'require')",
            result("[null,null,null,null]"),
        ),
        case(
            "os fields",
            "local n = {} for k in pairs(os) do n[#n + 1] = k end table.sort(n) return table.concat(n, ',')",
            result(r#"["clock,date,time"]"#),
        ),
        case(
            "no string.dump via methods",
            "return ('').dump",
            result("[null]"),
        ),
        case(
            "string metatable hidden",
            "return getmetatable('')",
            result("[false]"),
        ),
        case(
            "_G walk has no host escape",
            "for k, v in next, _G do if k == 'io' or k == 'package' or k == 'debug' or k == 'require' or k == 'dofile' or k == 'loadfile' or k == 'collectgarbage' then return k end end return 'clean'",
            result(r#"["clean"]"#),
        ),
        case(
            "load returns _ENV = sandbox",
            "return load('return _ENV')() == _G",
            result("[true]"),
        ),
        case(
            "load with a table env has no io",
            "return load('return io', 'x', 't', setmetatable({}, {__index = function(t, k) return nil end}))()",
            result("[null]"),
        ),
        case(
            "load with a nil env",
            "return pcall(load('return print', 'x', 't', nil))",
            Contained,
        ),
        case(
            "load reader returning a table",
            "return load(function() return {} end)",
            Contained,
        ),
        case(
            "load reader memory bomb",
            "local n = 0 return load(function() n = n + 1 if n < 2000 then return string.rep('x=1 ', 10000) end end)",
            Contained,
        ),
        case(
            "load with a huge chunk name",
            "return load('return 1', string.rep('=', 1e6))()",
            result("[1]"),
        ),
        case(
            "parser nesting",
            "return pcall(load, ('('):rep(1e5) .. '1' .. (')'):rep(1e5))",
            Contained,
        ),
        case(
            "table constructor nesting",
            "return pcall(load, 'return ' .. ('{'):rep(1e5) .. ('}'):rep(1e5))",
            Contained,
        ),
        case(
            "concat expression nesting",
            "return pcall(load, 'return ' .. ('\"a\"..'):rep(1e5) .. '\"a\"')",
            Contained,
        ),
        case(
            "constants bomb",
            "local s = {'return {'} for i = 1, 1e6 do s[#s + 1] = i .. ',' end s[#s + 1] = '}' return #load(table.concat(s))()",
            Contained,
        ),
        case(
            "select with huge varargs",
            "local function f(...) return select('#', ...) end return f(table.unpack({}, 1, 1e6))",
            Fails("lua_error"),
        ),
        case("select at 2^62", "return select(2^62, 1)", result("[]")),
        case(
            "string.rep with a huge separator",
            "return #string.rep('x', 1e5, string.rep('y', 1e5))",
            Contained,
        ),
        case(
            "string.rep of empty 2^53 times",
            "return string.rep('', 2^53)",
            Contained,
        ),
        case(
            "table.concat bomb",
            "local s = ('x'):rep(1e6) local t = {} for i = 1, 1000 do t[i] = s end return #table.concat(t)",
            Limit("memory"),
        ),
        case(
            "table.concat separator bomb",
            "local t = {} for i = 1, 1e6 do t[i] = '' end return #table.concat(t, ('x'):rep(1000))",
            Limit("memory"),
        ),
        case(
            "utf8.char bomb",
            "local t = {} for i = 1, 200000 do t[i] = 0x10FFFF end return #utf8.char(table.unpack(t))",
            result("[800000]"),
        ),
        case(
            "utf8.codepoint over a huge range",
            "return utf8.codepoint(('x'):rep(1e6), 1, -1)",
            Fails("lua_error"),
        ),
        case(
            "string.byte over a huge range",
            "return select('#', string.byte(('x'):rep(1e6), 1, -1))",
            Fails("lua_error"),
        ),
        case(
            "string.char bomb",
            "return pcall(string.char, table.unpack({}, 1, 1e6))",
            Contained,
        ),
        case(
            "string.packsize bomb",
            "return string.packsize(('i16'):rep(1e9))",
            Contained,
        ),
        case(
            "long __index chain",
            "local t = {} for i = 1, 1e5 do t = setmetatable({}, {__index = t}) end return t.x",
            Contained,
        ),
        case(
            "__index cycle",
            "local a, b = {}, {} setmetatable(a, {__index = b}) setmetatable(b, {__index = a}) return a.x",
            Fails("lua_error"),
        ),
        case(
            "__newindex cycle",
            "local a, b = {}, {} setmetatable(a, {__newindex = b}) setmetatable(b, {__newindex = a}) a.x = 1",
            Fails("lua_error"),
        ),
        case(
            "__eq recursion",
            "local mt = {} mt.__eq = function(a, b) return a == b end return setmetatable({}, mt) == setmetatable({}, mt)",
            Fails("lua_error"),
        ),
        case(
            "__concat recursion",
            "local mt = {} mt.__concat = function(a, b) return a .. b end return setmetatable({}, mt) .. 'x'",
            Fails("lua_error"),
        ),
        case(
            "__len recursion",
            "local mt = {} mt.__len = function(a) return #a end return #setmetatable({}, mt)",
            Fails("lua_error"),
        ),
        case(
            "__call self chain",
            "local t = setmetatable({}, {}) getmetatable(t).__call = t return t()",
            Contained,
        ),
        case("goto loop", "::a:: goto a", Limit("cpu")),
        case(
            "coroutine nesting",
            "local function f(n) if n == 0 then return 0 end return coroutine.wrap(function() return f(n - 1) end)() end return f(250)",
            Contained,
        ),
        case(
            "coroutine bomb with yields",
            "local t = {} for i = 1, 1e5 do t[i] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[i]) end return #t",
            Contained,
        ),
        case(
            "yield across pcall",
            "local co = coroutine.wrap(function() pcall(coroutine.yield, 1) return 2 end) return co(), co()",
            result("[1,2]"),
        ),
        case(
            "yield across a host callback",
            "local co = coroutine.create(function() return regex.gsub('a', 'a', function() return coroutine.yield(1) end) end) return (coroutine.resume(co))",
            result("[false]"),
        ),
        case(
            "yield inside __tostring of print",
            "local co = coroutine.create(function() print(setmetatable({}, {__tostring = function() coroutine.yield() return 'x' end})) end) return (coroutine.resume(co))",
            result("[false]"),
        ),
        case(
            "__gc on _G",
            "setmetatable(_G, {__gc = function() while true do end end}) return 1",
            Fails("lua_error"),
        ),
        case(
            "__close that errors",
            "do local x <close> = setmetatable({}, {__close = function() error('c') end}) end",
            Fails("lua_error"),
        ),
        case("error(nil)", "error(nil)", Fails("lua_error")),
        case("error(42)", "error(42)", Fails("lua_error")),
        case(
            "error(function)",
            "error(function() end)",
            Fails("lua_error"),
        ),
        case("error(false)", "error(false)", Fails("lua_error")),
        case(
            "error(thread)",
            "error(coroutine.create(print))",
            Fails("lua_error"),
        ),
        case(
            "error table whose __index throws",
            "error(setmetatable({}, {__index = function() error('boom') end}))",
            Fails("lua_error"),
        ),
        case(
            "error table whose __index loops",
            "error(setmetatable({code = 'x'}, {__index = function() while true do end end}))",
            Contained,
        ),
        case(
            "error with a huge level",
            "error('x', 1e9)",
            Fails("lua_error"),
        ),
        case(
            "xpcall handler that errors",
            "return xpcall(error, function(e) error(e) end, 'x')",
            Contained,
        ),
        case(
            "xpcall handler recursion",
            "local function h(e) return xpcall(error, h, e) end return xpcall(error, h, 'x')",
            Contained,
        ),
        case("os.date '%'", "return pcall(os.date, '%')", Contained),
        case(
            "os.date '%Q'",
            "return (pcall(os.date, '%Q'))",
            result("[false]"),
        ),
        case(
            "os.date at 2^62",
            "return (pcall(os.date, '%c', 2^62))",
            result("[false]"),
        ),
        case(
            "os.date *t at -2^62",
            "return (pcall(os.date, '*t', -2^62))",
            result("[false]"),
        ),
        case(
            "os.date !*t at 1e300",
            "return (pcall(os.date, '!*t', 1e300))",
            result("[false]"),
        ),
        case(
            "os.date with a huge format",
            "return #os.date(string.rep('%c', 1e6))",
            Contained,
        ),
        case(
            "os.time with a huge year",
            "return (pcall(os.time, {year = 2^40, month = 1, day = 1}))",
            result("[false]"),
        ),
        case(
            "string.format %.99999f",
            "return string.format('%.99999f', 1)",
            Fails("lua_error"),
        ),
        case(
            "string.format %q of 10 MB",
            "return #string.format('%q', ('\\0'):rep(1e7))",
            Contained,
        ),
        case(
            "string.format %c of 1e9",
            "return #string.format('%c', 1e9)",
            result("[1]"),
        ),
        case(
            "gsub bomb",
            "return ('a'):rep(1e6):gsub('', ('y'):rep(1000))",
            Limit("memory"),
        ),
        case(
            "%b bomb",
            "return string.find(('('):rep(1e6), '%b()')",
            Limit("cpu"),
        ),
        case(
            "pattern too complex",
            "return string.match(('a'):rep(300000), ('a?'):rep(300000) .. ('a'):rep(300000))",
            Fails("lua_error"),
        ),
        case(
            "too many captures",
            "return string.find('a', ('()'):rep(100))",
            Fails("lua_error"),
        ),
        case(
            "regex of 1 MB",
            "return (pcall(regex.match, 'a', ('a'):rep(1e6)))",
            result("[false]"),
        ),
        case(
            "nested regex repetition",
            "return (pcall(regex.match, 'a', '((((a{100}){100}){100}){100})'))",
            result("[false]"),
        ),
        case(
            "regex backreference refused",
            "return (pcall(regex.match, 'aa', '(a)\\\\1'))",
            result("[false]"),
        ),
        case(
            "regex /i flag",
            "return regex.match('HeLLo', '/hello/i')[0]",
            result(r#"["HeLLo"]"#),
        ),
        case(
            "regex.split of 1e6 parts",
            "return #regex.split(('a,'):rep(1e6), ',')",
            result("[1000001]"),
        ),
        case(
            "regex.gsub callback error",
            "return (pcall(regex.gsub, 'abc', 'b', function() error({x = 1}) end))",
            result("[false]"),
        ),
        case(
            "json.decode of 1e6 nested arrays",
            "return (pcall(json.decode, ('['):rep(1e6) .. (']'):rep(1e6)))",
            result("[false]"),
        ),
        case(
            "json.decode of 1e5 nested objects",
            "return (pcall(json.decode, ('{\"a\":'):rep(1e5) .. '1' .. ('}'):rep(1e5)))",
            result("[false]"),
        ),
        case(
            "json.decode of a 20 MB string",
            "return #json.decode('\"' .. ('x'):rep(2e7) .. '\"')",
            Contained,
        ),
        case(
            "json.decode of bad UTF-8",
            "return (pcall(json.decode, '\"\\xff\"'))",
            result("[false]"),
        ),
        case(
            "json.decode of 1e400",
            "return (pcall(json.decode, '1e400'))",
            result("[false]"),
        ),
        case(
            "json.decode of nil",
            "return (pcall(json.decode, nil))",
            result("[false]"),
        ),
        case(
            "json.encode of an array cycle",
            "local t = {} t[1] = t return (pcall(json.encode, t))",
            result("[false]"),
        ),
        case(
            "json.encode of NaN",
            "return (pcall(json.encode, {0/0}))",
            result("[false]"),
        ),
        case(
            "json.encode of a table key",
            "return (pcall(json.encode, {[{}] = 1}))",
            result("[false]"),
        ),
        case(
            "json.encode of bad UTF-8",
            "return (pcall(json.encode, '\\xff\\xfe'))",
            result("[false]"),
        ),
        case(
            "json.encode with a throwing __pairs",
            "return json.encode(setmetatable({}, {__pairs = function() error('p') end}))",
            Contained,
        ),
        case(
            "json round trip of [] and {}",
            "return json.encode(json.decode('{\"a\":[],\"b\":{}}'))",
            result(r#"["{\"a\":[],\"b\":{}}"]"#),
        ),
        case(
            "json.null round trip",
            "return json.encode(json.decode('[null,1]')), json.decode('null') == json.null",
            result(r#"["[null,1]",true]"#),
        ),
        case(
            "dump of a cycle",
            "local t = {} t.self = t t[1] = t dump(t) return 1",
            result("[1]"),
        ),
        case(
            "dump of a mutual cycle",
            "local a, b = {}, {} a.b = b b.a = a dump(a) return 1",
            result("[1]"),
        ),
        case(
            "dump with a throwing __tostring",
            "dump(setmetatable({}, {__tostring = function() error('x') end})) return 1",
            Contained,
        ),
        case(
            "dump of mixed key types",
            "dump({[1] = 1, a = 2, [true] = 3, [1.5] = 4, [print] = 5}) return 1",
            result("[1]"),
        ),
        case("dump of 20 MB", "dump(('x'):rep(2e7))", Limit("output")),
        case(
            "dump of a million keys",
            "local t = {} for i = 1, 1e6 do t['k' .. i] = i end dump(t)",
            Contained,
        ),
        case(
            "print of NUL and bad UTF-8",
            "print('a\\0b', '\\xff\\xfe') return 1",
            result("[1]"),
        ),
        case(
            "tostring replaced",
            "tostring = function() return 'x' end print(1) dump({1}) return 1",
            result("[1]"),
        ),
        case(
            "return of a cycle",
            "local t = {} t.t = t return t",
            Contained,
        ),
        case(
            "return of functions and threads",
            "return print, coroutine.create(print)",
            Contained,
        ),
        case(
            "return of NaN and infinities",
            "return 0/0, 1/0, -1/0, math.mininteger",
            Contained,
        ),
        case("return of bad UTF-8", "return '\\xff\\xfe'", Contained),
        case(
            "return of a million items",
            "local t = {} for i = 1, 1e6 do t[i] = i end return t",
            Contained,
        ),
        case(
            "math edge cases",
            "return math.mininteger % -1, math.mininteger // -1, (pcall(function() return 1 // 0 end))",
            result("[0,-9223372036854775808,false]"),
        ),
        case(
            "table.move wrap-around",
            "return (pcall(table.move, {1}, 1, math.maxinteger, 2))",
            result("[false]"),
        ),
        case(
            "table.sort with an invalid order",
            "local t = {} for i = 1, 1000 do t[i] = i end return (pcall(table.sort, t, function() return true end))",
            Contained,
        ),
        case(
            "table.unpack of 2^31",
            "return (pcall(table.unpack, {}, 1, 2^31))",
            result("[false]"),
        ),
        case(
            "docs.read of 10 MB",
            "return (pcall(docs.read, ('x'):rep(1e7)))",
            Contained,
        ),
        case(
            "docs.search of 2 MB",
            "return (pcall(docs.search, ('x '):rep(1e6), 1e9))",
            Contained,
        ),
        case(
            "docs helpers with bad types",
            "return (pcall(docs.list, {})), (pcall(lua_read_doc, {})), (pcall(docs.search, 'x', -1))",
            result("[false,false,false]"),
        ),
        case(
            "parallel of non-functions",
            "return (pcall(parallel, 1, 'x', {}))",
            result("[false]"),
        ),
        case(
            "parallel of 10000 functions",
            "local fs = {} for i = 1, 10000 do fs[i] = function() return i end end return select('#', parallel(table.unpack(fs, 1, 7000)))",
            Contained,
        ),
        case(
            "parallel that loops",
            "parallel(function() while true do end end)",
            Limit("cpu"),
        ),
        with(
            "call with a cyclic argument",
            "local t = {} t.t = t return (pcall(app.integrations.anthropic.create_message, {model = 'm', messages = {t}}))",
            &["--dry-run", "--max-calls", "100000"],
            result("[false]"),
        ),
        with(
            "call with a function argument",
            "local ok, e = pcall(app.integrations.anthropic.get_model, {id = print}) return e.code",
            &["--dry-run", "--max-calls", "100000"],
            result(r#"["validation_error"]"#),
        ),
        with(
            "call with method syntax",
            "local ok, e = pcall(function() return app.integrations.anthropic:get_model('x') end) return ok",
            &["--dry-run", "--max-calls", "100000"],
            result("[false]"),
        ),
        with(
            "rawset on a namespace",
            "return (pcall(rawset, app.integrations.anthropic, 'x', 1))",
            &["--dry-run", "--max-calls", "100000"],
            result("[false]"),
        ),
        with(
            "next on app.integrations",
            "return (pcall(next, app.integrations))",
            &["--dry-run", "--max-calls", "100000"],
            result("[false]"),
        ),
        with(
            "pairs on a namespace",
            "for k in pairs(app.integrations.anthropic) do end",
            &["--dry-run", "--max-calls", "100000"],
            Fails("lua_error"),
        ),
        with(
            "integration call in a coroutine",
            "local co = coroutine.create(function() return app.integrations.anthropic.list_messages{} end) local ok, e = coroutine.resume(co) return ok, e.code",
            &["--dry-run", "--max-calls", "100000"],
            result(r#"[false,"unsupported"]"#),
        ),
        with(
            "10000 dry-run calls",
            "for i = 1, 10000 do app.integrations.anthropic.get_model('m') end return 1",
            &["--dry-run", "--max-calls", "100000"],
            result("[1]"),
        ),
    ]
}

#[test]
fn sandbox_second_battery() {
    run_battery(second_battery());
}

#[test]
fn limits_are_not_dodged() {
    let dir = TempDir::new().unwrap();
    let o = Kosmo::lua_args(&[
            "--offline",
            "--max-calls",
            "1",
            "--eval",
            "app.integrations.anthropic.get_model('claude-sonnet-4-0') local ok = pcall(app.integrations.anthropic.get_model, 'claude-sonnet-4-0') return 'survived'",
        ]).dir(dir.path()).run();
    assert_eq!(o.err_code(), "limit_exceeded", "{}", o.show());
    assert_eq!(o.env["error"]["limit"], "calls");
    let o = Kosmo::lua_args(&[
            "--offline",
            "--force",
            "--cpu-limit",
            "0.5",
            "--eval",
            "return app.integrations.anthropic.create_message{model = 'm', messages = {{role = 'user', content = 'x'}}, stream = true, on_event = function(e) while true do end end}",
        ]).dir(dir.path()).run();
    assert_eq!(o.env["error"]["limit"], "cpu", "{}", o.show());
    assert_eq!(o.env["integration_calls"].as_array().unwrap().len(), 1);
}
