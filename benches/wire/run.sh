#!/bin/sh
# The side-by-side wire benchmark (issue 13): kosmo, the official Anthropic Python SDK and wrk
# against one loopback nginx, in one run. From a fresh clone:
#
#     benches/wire/run.sh            # full run, about 3 minutes on 2 cores
#     benches/wire/run.sh --quick    # smaller workloads, one round
#
# Options after the script name go to compare.py (--rounds N, --only sequential,rows,...,
# --parallel N, --keep). It installs what is missing: nginx and wrk from the Debian packages
# (apt-get, as root or through sudo), the SDK (anthropic==2.14.0) into target/bench-venv from
# PyPI unless KOSMO_SDK_PYTHON names a python that has it, and builds kosmo with
# `cargo build --release`. Results: a Markdown table on stdout; docs/benchmarks.md keeps the
# latest one and explains it.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "run.sh: need root (or sudo) to install $*" >&2; exit 1; fi
}

missing=""
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
command -v wrk >/dev/null || missing="$missing wrk"
if [ -n "$missing" ]; then
    echo "installing$missing (Debian packages)" >&2
    as_root apt-get update -qq
    # Do not start the packaged service: the benchmark runs its own nginx.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
        remove_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing >&2 \
        || DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx wrk >&2
    [ "${remove_policy:-0}" = 1 ] && as_root rm -f /usr/sbin/policy-rc.d
fi
PATH=$PATH:/usr/sbin

python=${KOSMO_SDK_PYTHON:-}
if [ -z "$python" ] || ! "$python" -c 'import anthropic' 2>/dev/null; then
    python=$target/bench-venv/bin/python
    if ! "$python" -c 'import anthropic' 2>/dev/null; then
        echo "installing the official SDK (anthropic==2.14.0) into $target/bench-venv" >&2
        python3 -m venv "$target/bench-venv"
        "$python" -m pip install -q 'anthropic==2.14.0' >&2
    fi
fi

(cd "$root" && cargo build --release --bin kosmo >&2)
exec "$python" "$root/benches/wire/compare.py" --kosmo "$target/release/kosmo" "$@"
