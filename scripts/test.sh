#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, lint, type-check, layer check, then the tests
# on SQLite and on PostgreSQL, the real-browser tests in a loopback-only network namespace,
# and the benchmarks at a tiny size.
#
# Environment: SUIMEET_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test),
# SUIMEET_VENV (default .venv), SUIMEET_SKIP_INSTALL=1 to reuse an installed environment.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SUIMEET_VENV:-.venv}"
if [ "${SUIMEET_SKIP_INSTALL:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ "$(id -u)" = 0 ] && ! command -v nft >/dev/null 2>&1; then
    echo "== installing nftables (the network-loss browser test cuts traffic with it)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
  fi
  echo "== installing SuiMeet and its test dependencies into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e '.[test]'
fi
export PATH="$PWD/$venv/bin:$PATH"

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy (strict)"
mypy
echo "== import layers (DESIGN.md)"
lint-imports

pg_url="${SUIMEET_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
echo "== tests on SQLite"
SUIMEET_TEST_DB=sqlite python -m pytest -q -m "not e2e" -p no:cacheprovider
echo "== tests on PostgreSQL"
SUIMEET_TEST_DB=postgresql SUIMEET_TEST_PG_URL="$pg_url" \
  python -m pytest -q -m "not e2e" -p no:cacheprovider

if [ -d tests/e2e ]; then
  echo "== real-browser and multi-process tests (loopback-only network namespace)"
  # Inside the namespace TCP to 127.0.0.1:5432 reaches nothing: SQLite there.
  unshare --net sh -c 'ip link set lo up && exec python -m pytest -q -m e2e -p no:cacheprovider tests/e2e'
fi

if [ -d bench ] && ls bench/*.py >/dev/null 2>&1; then
  echo "== benchmarks, tiny size (smoke)"
  for b in bench/*.py; do
    python "$b" --smoke >/dev/null
    echo "   $b ok"
  done
fi
