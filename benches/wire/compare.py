#!/usr/bin/env python3
"""kosmo next to the official Anthropic Python SDK, against one loopback nginx, in one run.

Usually started by `benches/wire/run.sh`, which installs nginx and wrk, makes a venv with the SDK
and builds kosmo in release mode. Run directly:

    PYTHON_WITH_SDK benches/wire/compare.py --kosmo target/release/kosmo [--quick]

It writes an nginx configuration and its fixed answers into a temporary directory, starts nginx
on a free loopback port (one worker), and for each figure runs kosmo, the SDK, and wrk where a
load tool makes sense, all against that same nginx. Then it prints one table with the ratios.

Timing: the SDK times its work in-process with `perf_counter` after a warm-up (the 1.2 s import is
not counted). The kosmo script warms up the same way, then prints a marker line before and after
the work; this script timestamps the markers as they arrive on the pipe, so kosmo's process start,
registry load and first connection are not counted either. Each number is the median of `--rounds`
runs. Memory is the process's peak resident set (`wait4` rusage), whole process, for both; the
memory figure runs with `--json`, so the envelope and its call records are included.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MODEL = "claude-sonnet-4-20250514"
COUNT_ARGS = {"model": MODEL, "messages": [{"role": "user", "content": "Hello, Claude"}]}
COUNT_BODY = json.dumps(COUNT_ARGS)
MESSAGE = {
    "id": "msg_01bench",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
BATCH_ID = "msgbatch_01bench"


# ----------------------------------------------------------------------------- fixed answers


def write_fixtures(d, port, rows, deltas):
    """The files nginx serves: a JSONL batch result, an SSE stream, a batch object."""
    text = "The quick brown fox jumps over the lazy dog. " * 7
    with open(os.path.join(d, "results.jsonl"), "w") as f:
        for i in range(rows):
            msg = dict(MESSAGE, id=f"msg_{i:08d}", content=[{"type": "text", "text": text}])
            msg["usage"] = {"input_tokens": 10 + i % 50, "output_tokens": 60 + i % 7}
            row = {"custom_id": f"request-{i:08d}", "result": {"type": "succeeded", "message": msg}}
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
    start = dict(MESSAGE, content=[], stop_reason=None)
    events = [("message_start", {"type": "message_start", "message": start})]
    events.append(
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    )
    for i in range(deltas):
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"word{i % 100} "}},
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": deltas}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    with open(os.path.join(d, "stream.sse"), "w") as f:
        for name, data in events:
            f.write(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n")
    batch = {
        "id": BATCH_ID,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": rows, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-11-28T00:00:00Z",
        "expires_at": "2026-11-29T00:00:00Z",
        "ended_at": "2026-11-28T00:10:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"http://127.0.0.1:{port}/v1/messages/batches/{BATCH_ID}/results",
    }
    with open(os.path.join(d, "batch.json"), "w") as f:
        json.dump(batch, f)
    with open(os.path.join(d, "message.json"), "w") as f:
        json.dump(MESSAGE, f)


NGINX_CONF = """
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {d};
        default_type application/json;
        add_header request-id req_01bench always;
        location = /v1/messages/count_tokens {{
            return 200 '{{"input_tokens":14}}';
        }}
        location = /sse/v1/messages/count_tokens {{
            return 200 '{{"input_tokens":14}}';
        }}
        location = /v1/messages {{
            # A static file answers GET only; a POST's 405 becomes the file, sent with 200.
            error_page 405 =200 /message.json;
            try_files /message.json =404;
        }}
        location = /sse/v1/messages {{
            default_type text/event-stream;
            error_page 405 =200 /stream.sse;
            try_files /stream.sse =404;
        }}
        location = /stream.sse {{ default_type text/event-stream; }}
        location = /v1/messages/batches/{batch} {{
            try_files /batch.json =404;
        }}
        location = /v1/messages/batches/{batch}/results {{
            default_type application/binary;
            try_files /results.jsonl =404;
        }}
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(d, port):
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port, batch=BATCH_ID))
    # The worker may run as an unprivileged user: everything it reads must be readable.
    os.chmod(d, 0o755)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o755 if os.path.isdir(os.path.join(d, name)) else 0o644)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [nginx, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit("nginx did not start: " + proc.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start listening")


# ----------------------------------------------------------------------------- running things


def run(argv, env=None, stdin=None):
    """Run a process; answer (wall seconds, stdout)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE)
    out, err = proc.communicate(stdin)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}\n{out.decode(errors='replace')[-2000:]}")
    return wall, out


def run_rss(argv, env=None, marks=()):
    """Run a process; answer (wall seconds, peak RSS MB, stdout bytes, {mark: seconds}).

    A stdout line equal to one of `marks` is timed as it arrives (kosmo prints its markers
    around the work; its output is not buffered), and not kept in the output.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = {}
    out = []
    err = []
    import threading

    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    for line in proc.stdout:
        text = line.rstrip(b"\n").decode(errors="replace")
        if text in marks:
            seen[text] = time.perf_counter()
        else:
            out.append(line)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    reader.join()
    out = b"".join(out)
    err = b"".join(err)
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}\n{out.decode(errors='replace')[-2000:]}")
    return wall, ru.ru_maxrss / 1024.0, out, seen


def lua_table(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {lua_table(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "{" + ", ".join(lua_table(x) for x in v) + "}"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


WARMUP = 50
START, END = "kosmo-bench-start", "kosmo-bench-end"


def kosmo_script(work, marks=True):
    prelude = f"""
local count = app.integrations.anthropic.count_message_tokens
local args = {lua_table(COUNT_ARGS)}
for _ = 1, {WARMUP} do count(args) end
"""
    if not marks:
        return prelude + work + "\nreturn 'ok'\n"
    return prelude + f'print("{START}")\n' + work + f'\nprint("{END}")\nreturn "ok"\n'


class Kosmo:
    def __init__(self, exe, port, parallel):
        self.exe = exe
        self.env = dict(os.environ)
        self.env["ANTHROPIC_API_KEY"] = "sk-ant-api03-bench"
        self.env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        self.env["KOSMO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="kosmo-bench-config-")
        self.port = port
        self.parallel = parallel

    def argv(self, code, json_envelope=True):
        argv = [self.exe, "integrations:lua", "--force", "--max-calls", "1000000", "--cpu-limit", "600", "--timeout", "600"]
        if json_envelope:
            argv.append("--json")
        if self.parallel:
            argv += ["--parallel", str(self.parallel)]
        return argv + ["--eval", code]

    def once(self, work, env=None):
        """A run with the JSON envelope (what an agent reads): (wall, peak RSS MB, envelope)."""
        wall, rss, out, _ = run_rss(self.argv(kosmo_script(work, marks=False)), env or self.env)
        envelope = json.loads(out)
        if envelope.get("success") is not True:
            sys.exit(f"kosmo failed: {json.dumps(envelope)[:2000]}")
        return wall, rss, envelope

    def timed(self, work, rounds, env=None):
        """Median seconds of `work` alone (timed between the markers it prints), and peak RSS."""
        secs, rss = [], 0.0
        for _ in range(rounds):
            _, r, out, seen = run_rss(self.argv(kosmo_script(work), json_envelope=False), env or self.env, (START, END))
            if START not in seen or END not in seen:
                sys.exit(f"kosmo printed no markers: {out[-2000:]!r}")
            secs.append(seen[END] - seen[START])
            rss = max(rss, r)
        return statistics.median(secs), rss


def sdk(python, port, figure, *args):
    here = os.path.abspath(__file__)
    wall, rss, out, _ = run_rss([python, here, "sdk", str(port), figure, *map(str, args)])
    return json.loads(out), rss


def sdk_median(python, port, rounds, figure, *args):
    res = [sdk(python, port, figure, *args) for _ in range(rounds)]
    secs = statistics.median(r[0]["seconds"] for r in res)
    return secs, max(r[1] for r in res)


def wrk(port, connections, seconds):
    exe = shutil.which("wrk")
    if not exe:
        return None
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(COUNT_BODY)}\n"
    )
    script.close()
    threads = 1 if connections == 1 else 2
    _, out = run(
        [exe, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script.name, f"http://127.0.0.1:{port}/v1/messages/count_tokens"]
    )
    os.unlink(script.name)
    m = re.search(rb"Requests/sec:\s*([0-9.]+)", out)
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------- the SDK side


def sdk_main(port, figure, args):
    import anthropic

    base = f"http://127.0.0.1:{port}"
    out = {}
    if figure == "sequential":
        n = int(args[0])
        client = anthropic.Anthropic(api_key="sk-ant-api03-bench", base_url=base, max_retries=0)
        for _ in range(WARMUP):
            client.messages.count_tokens(**COUNT_ARGS)
        t = time.perf_counter()
        for _ in range(n):
            client.messages.count_tokens(**COUNT_ARGS)
        out["seconds"] = time.perf_counter() - t
    elif figure == "concurrent":
        import asyncio

        tasks, per = int(args[0]), int(args[1])

        async def main():
            client = anthropic.AsyncAnthropic(api_key="sk-ant-api03-bench", base_url=base, max_retries=0)
            for _ in range(WARMUP):
                await client.messages.count_tokens(**COUNT_ARGS)

            async def branch():
                for _ in range(per):
                    await client.messages.count_tokens(**COUNT_ARGS)

            t = time.perf_counter()
            await asyncio.gather(*(branch() for _ in range(tasks)))
            return time.perf_counter() - t

        out["seconds"] = asyncio.run(main())
    elif figure == "rows":
        client = anthropic.Anthropic(api_key="sk-ant-api03-bench", base_url=base, max_retries=0)
        client.messages.count_tokens(**COUNT_ARGS)
        t = time.perf_counter()
        n = 0
        for row in client.messages.batches.results(BATCH_ID):
            if row.result.type == "succeeded":
                n += 1
        out["seconds"] = time.perf_counter() - t
        out["rows"] = n
    elif figure == "stream":
        client = anthropic.Anthropic(api_key="sk-ant-api03-bench", base_url=base + "/sse", max_retries=0)
        client.messages.count_tokens(**COUNT_ARGS)
        t = time.perf_counter()
        n = 0
        with client.messages.stream(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]) as s:
            for ev in s:
                if ev.type == "content_block_delta":
                    n += 1
            final = s.get_final_message()
        out["seconds"] = time.perf_counter() - t
        out["events"] = n
        out["text_len"] = len(final.content[0].text)
    elif figure == "one_call":
        t = time.perf_counter()
        client = anthropic.Anthropic(api_key="sk-ant-api03-bench", base_url=base, max_retries=0)
        client.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
        out["seconds"] = time.perf_counter() - t
    print(json.dumps(out))


# ----------------------------------------------------------------------------- the table


def fmt_rate(x, unit):
    return f"{x:,.0f} {unit}"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "sdk":
        sdk_main(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kosmo", required=True, help="the kosmo binary (a release build)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per figure; the median counts (default 3)")
    ap.add_argument("--quick", action="store_true", help="smaller workloads, one round (a smoke test)")
    ap.add_argument("--parallel", type=int, default=0, help="pass --parallel N to kosmo (0: its default)")
    ap.add_argument("--only", default="", help="comma-separated figures: sequential,concurrent,rows,stream,memory,one_call")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--before", help="a second kosmo binary (say, the previous release) measured in the same run")
    o = ap.parse_args()
    quick = o.quick
    rounds = 1 if quick else o.rounds
    seq_n = 400 if quick else 2000
    tasks, per = (16, 16) if quick else (64, 63)
    rows_n = 10_000 if quick else 100_000
    deltas = 2_000 if quick else 10_000
    mem_calls = (2_000, 10_000) if quick else (20_000, 100_000)
    only = set(filter(None, o.only.split(","))) or {"sequential", "concurrent", "rows", "stream", "memory", "one_call"}

    d = tempfile.mkdtemp(prefix="kosmo-wire-")
    port = free_port()
    write_fixtures(d, port, rows_n, deltas)
    nginx = start_nginx(d, port)
    kosmo = Kosmo(os.path.abspath(o.kosmo), port, o.parallel)
    before = Kosmo(os.path.abspath(o.before), port, 0) if o.before else None

    def both(work, rounds, env=None):
        """(kosmo seconds, kosmo RSS, before seconds or None)."""
        k, rss = kosmo.timed(work, rounds, env)
        b = before.timed(work, rounds, env and dict(env, KOSMO_CONFIG_DIR=before.env["KOSMO_CONFIG_DIR"]))[0] if before else None
        return k, rss, b

    python = sys.executable
    table = []
    try:
        print(f"# nginx on 127.0.0.1:{port} ({d}); kosmo {o.kosmo}; SDK python {python}; rounds {rounds}", flush=True)
        if "sequential" in only:
            work = f"for _ = 1, {seq_n} do count(args) end"
            k, _, b = both(work, rounds)
            s, _ = sdk_median(python, port, rounds, "sequential", seq_n)
            w = wrk(port, 1, 3)
            table.append(("sequential count_message_tokens, %d calls" % seq_n, seq_n / k, b and seq_n / b, seq_n / s, w, "calls/s", ">= 10x"))
        if "concurrent" in only:
            work = f"""
local fns = {{}}
for i = 1, {tasks} do fns[i] = function() for _ = 1, {per} do count(args) end end end
parallel(table.unpack(fns))
"""
            n = tasks * per
            k, _, b = both(work, rounds)
            s, _ = sdk_median(python, port, rounds, "concurrent", tasks, per)
            w = wrk(port, 64, 3)
            table.append((f"{tasks} coroutines x {per} calls, parallel / asyncio", n / k, b and n / b, n / s, w, "calls/s", ">= 30x, >= 25% of wrk"))
        if "rows" in only:
            work = f"""
local n = 0
for row in rows(app.integrations.anthropic.get_message_batch_results, {{id = "{BATCH_ID}"}}) do
  if row.result.type == "succeeded" then n = n + 1 end
end
assert(n == {rows_n}, "rows: " .. n)
"""
            k, krss, b = both(work, rounds)
            s, srss = sdk_median(python, port, rounds, "rows")
            mb = os.path.getsize(os.path.join(d, "results.jsonl")) / 1e6
            table.append(
                (f"{rows_n:,} JSONL rows ({mb:.0f} MB) with rows()", rows_n / k, b and rows_n / b, rows_n / s, None, "rows/s", ">= 8x, < 32 MB")
            )
            table.append(("  peak RSS of that process", krss, None, srss, None, "MB", ""))
        if "stream" in only:
            env = dict(kosmo.env, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}/sse")
            work = f"""
local n = 0
local m = app.integrations.anthropic.create_message{{model = "{MODEL}", max_tokens = 16,
  messages = {{{{role = "user", content = "Hi"}}}}, stream = true,
  on_event = function(ev) if ev.type == "content_block_delta" then n = n + 1 end end}}
assert(n == {deltas}, "events: " .. n)
"""
            k, krss, b = both(work, rounds, env)
            s, srss = sdk_median(python, port, rounds, "stream")
            table.append((f"SSE stream of {deltas:,} deltas with on_event", k * 1000, b and b * 1000, s * 1000, None, "ms", ">= 8x"))
            table.append(("  peak RSS of that process", krss, None, srss, None, "MB", ""))
        if "memory" in only:
            for n in mem_calls:
                work = f"for _ = 1, {n} do count(args) end"
                wall, rss, env = kosmo.once(work)
                calls = env.get("integration_calls") or []
                brss = before.once(work)[1] if before else None
                table.append((f"peak RSS, run of {n:,} calls (envelope keeps {len(calls):,} records)", rss, brss, None, None, "MB", "< 40 MB for 100k"))
        if "one_call" in only:
            code = f'return app.integrations.anthropic.create_message{{model = "{MODEL}", max_tokens = 16, messages = {{{{role = "user", content = "Hi"}}}}}}.id'
            ks = []
            bs = []
            ss = []
            for _ in range(max(rounds, 3)):
                wall, _, _, _ = run_rss(kosmo.argv(code), kosmo.env)
                ks.append(wall)
                if before:
                    bs.append(run_rss(before.argv(code), before.env)[0])
                wall, _, _, _ = run_rss(
                    [python, os.path.abspath(__file__), "sdk", str(port), "one_call"],
                )
                ss.append(wall)
            table.append(
                ("process with one create_message call", statistics.median(ks) * 1000, bs and statistics.median(bs) * 1000, statistics.median(ss) * 1000, None, "ms", "keep")
            )
    finally:
        nginx.terminate()
        nginx.wait()
        if not o.keep:
            shutil.rmtree(d, ignore_errors=True)
            for k in (kosmo, before):
                if k:
                    shutil.rmtree(k.env["KOSMO_CONFIG_DIR"], ignore_errors=True)

    print()
    print("| figure | kosmo |" + (" kosmo --before |" if before else "") + " SDK | wrk (same server) | kosmo / SDK | kosmo / wrk |" + (" now / before |" if before else "") + " target |")
    print("|---|---|" + ("---|" if before else "") + "---|---|---|---|" + ("---|" if before else "") + "---|")
    for name, k, b, s, w, unit, target in table:
        lower_is_better = unit in ("ms", "MB")

        def show(x):
            if x is None:
                return ""
            return f"{x:,.1f} {unit}" if lower_is_better else fmt_rate(x, unit)

        def times(a, c):
            if not a or not c:
                return ""
            return f"{(c / a if lower_is_better else a / c):.1f}x"

        wr = "" if not w else f"{100 * k / w:.0f}%"
        row = f"| {name} | {show(k)} |"
        if before:
            row += f" {show(b)} |"
        row += f" {show(s)} | {show(w)} | {times(k, s)} | {wr} |"
        if before:
            row += f" {times(k, b)} |"
        print(row + f" {target} |")


if __name__ == "__main__":
    main()
