#!/bin/sh
# Entry point of the geoproc image. A role runs the same command the local stack runs
# (geoproc/dev/local_stack.py, ENTRYPOINT_COMMANDS), with the remaining arguments appended;
# anything else is executed as given (Prefect's Kubernetes worker starts flow runs with
# `prefect flow-run execute`, the Dask operator may pass `dask-worker ...`).
set -eu

role="${1:-help}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "${role}" in
    prefect-server) exec prefect server start "$@" ;;
    prefect-worker) exec prefect worker start "$@" ;;
    dask-scheduler) exec dask scheduler "$@" ;;
    dask-worker) exec dask worker "$@" ;;
    stac-api) exec geoproc stac serve "$@" ;;
    help | --help)
        echo "usage: ROLE [ARGS...] | COMMAND [ARGS...]"
        echo "roles: prefect-server prefect-worker dask-scheduler dask-worker stac-api"
        exit 0
        ;;
    *) exec "${role}" "$@" ;;
esac
