#!/usr/bin/env bash
# Bring up the local stack (Prefect server + process worker, Dask scheduler + workers,
# S3 API with a bucket, STAC API over the sample archive) on 127.0.0.1.
# Configuration: GEOPROC_STACK_* variables only (see geoproc/dev/local_stack.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
geoproc="${root}/.venv/bin/geoproc"
[ -x "${geoproc}" ] || geoproc="geoproc"
cd "${root}"
exec "${geoproc}" stack up
