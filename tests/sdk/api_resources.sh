#!/usr/bin/env bash
# Run the official Anthropic Python SDK's own generated endpoint tests (`tests/api_resources` of
# the anthropic 2.14.0 sdist) against `kosmo simulator:serve anthropic --mock`, the way Prism or
# stripe-mock serve SDK test suites.
#
# Usage: tests/sdk/api_resources.sh [pytest args...]
#   e.g. tests/sdk/api_resources.sh -k "not Async"          (sync tests only)
#
# Environment (all optional):
#   KOSMO_BIN        the kosmo binary (default: target/debug/kosmo, built if missing)
#   SDK_WORK         where the sdist and its test venv live (default: target/sdk-api-resources)
#   SDK_VERSION      default 2.14.0
#   SDK_TEST_FILES   space-separated test files under tests/api_resources (default: every file
#                    whose endpoints the anthropic manifest has, below)
#   PYTEST_WORKERS   default 2
#
# Needs python3 and access to PyPI the first time (the sdist and the SDK's test dependencies).
# Prints pytest's summary line; exits with pytest's status. Without pytest args, the tests of
# `users.sign_out` (not in the manifest) are deselected.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VERSION="${SDK_VERSION:-2.14.0}"
WORK="${SDK_WORK:-$ROOT/target/sdk-api-resources}"
KOSMO="${KOSMO_BIN:-$ROOT/target/debug/kosmo}"
WORKERS="${PYTEST_WORKERS:-2}"
# The endpoints of manifests/anthropic.yaml: Messages (+ count_tokens), Message Batches, Models,
# Files, and the Admin API's organization, users, invites, workspaces, members and API keys; the
# beta variants of the same endpoints (`?beta=true`) too.
DEFAULT_FILES="test_messages.py messages/test_batches.py test_models.py test_files.py
test_organization.py organization/test_users.py organization/test_invites.py
organization/test_workspaces.py organization/workspaces/test_members.py
organization/test_api_keys.py beta/test_messages.py beta/messages/test_batches.py
beta/test_models.py beta/test_files.py beta/test_organization.py beta/organization/test_users.py
beta/organization/test_invites.py beta/organization/test_workspaces.py
beta/organization/workspaces/test_members.py beta/organization/test_api_keys.py"
FILES="${SDK_TEST_FILES:-$DEFAULT_FILES}"

mkdir -p "$WORK"
SRC="$WORK/anthropic-$VERSION"
if [ ! -d "$SRC/tests/api_resources" ]; then
  python3 -m pip download "anthropic==$VERSION" --no-deps --no-binary :all: -d "$WORK" -q
  tar xzf "$WORK/anthropic-$VERSION.tar.gz" -C "$WORK"
fi
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import anthropic, pytest, respx, http_snapshot" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "anthropic[aiohttp]==$VERSION" pytest==9.0.3 pytest-asyncio==1.3.0 \
    pytest-xdist==3.8.0 respx==0.22.0 dirty-equals==0.11 time-machine inline-snapshot==0.32.5 \
    http-snapshot==0.1.9 httpx2==2.9.1 httpcore2==2.9.1
fi
if [ ! -x "$KOSMO" ]; then
  (cd "$ROOT" && cargo build -q)
fi

# The SDK's tests authenticate with `my-anthropic-api-key` on every endpoint, admin ones too.
URL_FILE="$(mktemp)"
"$KOSMO" simulator:serve anthropic --mock \
  --key api_key=my-anthropic-api-key --key admin_key=my-anthropic-api-key >"$URL_FILE" 2>/dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; rm -f "$URL_FILE"' EXIT
for _ in $(seq 1 100); do
  [ -s "$URL_FILE" ] && break
  sleep 0.1
done
BASE="$(head -1 "$URL_FILE")"
[ -n "$BASE" ] || { echo "the simulator did not start" >&2; exit 1; }

ARGS=()
for f in $FILES; do ARGS+=("tests/api_resources/$f"); done
# `users.sign_out` (beta/organization/test_users.py) is an endpoint the manifest does not have.
if [ $# -eq 0 ]; then set -- -k "not sign_out"; fi
cd "$SRC"
status=0
TEST_API_BASE_URL="$BASE" "$VENV/bin/python" -m pytest "${ARGS[@]}" -p no:cacheprovider -q \
  -n "$WORKERS" -W ignore "$@" || status=$?
exit $status
