#!/usr/bin/env bash
# The dev run: secrets, database, migrations, demo data, then every process in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi
run() { "${UV[@]}" run --frozen "$@"; }

run python -m shared.bootstrap env
if ! run python -m shared.bootstrap check; then
  exit 1
fi
run python -m shared.bootstrap migrate
run python -m shared.bootstrap demo

processes=(conversation billing llm gateway)
# The stand-in runs only when DashScope's base URL points at it (the default).
if run python -m shared.bootstrap uses-standin; then
  processes=(standin "${processes[@]}")
fi
echo "starting: ${processes[*]} (Ctrl-C stops them all)"
# Each process reads .env itself (the environment wins over it), so honcho must not inject it.
exec "${UV[@]}" run --frozen honcho --env /dev/null -f Procfile start "${processes[@]}"
