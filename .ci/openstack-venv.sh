#!/usr/bin/env bash
# Build (idempotently) an isolated virtual environment holding the real OpenStack command
# line client (python-openstackclient + python-octaviaclient) that the `serve` tests drive
# against `lbsim serve`. It is kept apart from lbsim's own environment so that the client's
# pins never change what lbsim runs with.
#
# Usage: .ci/openstack-venv.sh      -> prints the venv's `openstack` executable on stdout
# Env:   OSC_VERSION (default 10.5.0), OCTAVIACLIENT_VERSION (default 3.15.0), PYTHON (python3)
set -euo pipefail

OSC_VERSION="${OSC_VERSION:-10.5.0}"
OCTAVIACLIENT_VERSION="${OCTAVIACLIENT_VERSION:-3.15.0}"
PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-openstack"
PY="$VENV/bin/python"
OSC="$VENV/bin/openstack"
STAMP="$VENV/.osc-$OSC_VERSION-$OCTAVIACLIENT_VERSION.ok"

if [[ -x "$OSC" && -f "$STAMP" ]]; then
    echo "$OSC"
    exit 0
fi

if [[ ! -x "$PY" ]]; then
    "$PYTHON" -m venv "$VENV" >&2
fi
"$PY" -m pip install --disable-pip-version-check --quiet --upgrade pip >&2
"$PY" -m pip install --disable-pip-version-check --quiet \
    "python-openstackclient==$OSC_VERSION" "python-octaviaclient==$OCTAVIACLIENT_VERSION" >&2
"$OSC" --version >&2
touch "$STAMP"
echo "$OSC"
