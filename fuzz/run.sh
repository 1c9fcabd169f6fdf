#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for N seconds each, starting from the seed corpus.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 60 seconds, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants a nightly compiler for
# `-Z sanitizer`; with a stable toolchain RUSTC_BOOTSTRAP=1 unlocks it (set here). New inputs
# go to fuzz/corpus/<target>/ (keep the small interesting ones: `cargo test` replays them);
# crashes to fuzz/artifacts/<target>/. Exit status: non-zero when a target found a crash.
# The stable replay of the corpus runs in plain `cargo test` (kosmo::fuzz's tests).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(retry_headers sse jsonl error_envelope manifest call_args)
fi
export RUSTC_BOOTSTRAP=1
# Sanitizer builds in their own target dir, never mixed with the main build's cache.
export CARGO_TARGET_DIR="$PWD/target"
status=0
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  # New inputs go to work/<t> (scratch, ignored by git); corpus/<t> is read as seeds.
  mkdir -p "work/$t" "corpus/$t"
  if ! cargo fuzz run "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" \
      -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
    status=1
  fi
done
exit $status
