#!/usr/bin/env bash
# Stop every process of the local stack and verify that none is left.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
geoproc="${root}/.venv/bin/geoproc"
[ -x "${geoproc}" ] || geoproc="geoproc"
cd "${root}"
exec "${geoproc}" stack down
