#!/usr/bin/env bash
# Build (idempotently) the isolated virtual environment holding the upstream
# OpenStack Octavia release that lbsim's status aggregation is checked against
# (tests/conformance/).  Octavia needs no database or services for this: the
# conformance driver mocks its session and repositories.
#
# Usage: .ci/octavia-venv.sh          -> prints the venv's python path on stdout
# Env:   OCTAVIA_VERSION (default 19.0.0), PYTHON (default python3)
set -euo pipefail

OCTAVIA_VERSION="${OCTAVIA_VERSION:-19.0.0}"
PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-octavia"
PY="$VENV/bin/python"
STAMP="$VENV/.octavia-$OCTAVIA_VERSION.ok"

if [[ -x "$PY" && -f "$STAMP" ]] \
   && "$PY" -c "import octavia.amphorae.drivers.health.heartbeat_udp" >/dev/null 2>&1; then
    echo "$PY"
    exit 0
fi

if [[ ! -x "$PY" ]]; then
    "$PYTHON" -m venv "$VENV" >&2
fi
"$PY" -m pip install --disable-pip-version-check --quiet --upgrade pip >&2
"$PY" -m pip install --disable-pip-version-check --quiet "octavia==$OCTAVIA_VERSION" >&2
"$PY" -c "import octavia.amphorae.drivers.health.heartbeat_udp" >&2
touch "$STAMP"
echo "$PY"
