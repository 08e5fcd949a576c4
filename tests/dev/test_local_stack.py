"""The local stack's supervisor without its servers: settings, ports, and a `down` that leaves
nothing behind, including children that escaped into their own session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from geoproc.dev.local_stack import (
    STACK_ID_VARIABLE,
    StackSettings,
    StackState,
    resolve_ports,
    stack_down,
    stack_status,
)
from geoproc.errors import UsageError


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_settings_come_from_prefixed_variables_and_name_the_one_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOPROC_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("GEOPROC_STACK_DASK_WORKERS", "3")
    monkeypatch.setenv("DASK_WORKERS", "9")  # unprefixed: ignored
    settings = StackSettings.from_environment()
    assert (settings.dir, settings.dask_workers, settings.prefect_port) == (tmp_path, 3, 4200)
    monkeypatch.setenv("GEOPROC_STACK_PREFECT_PORT", "70000")
    with pytest.raises(UsageError, match="GEOPROC_STACK_PREFECT_PORT"):
        StackSettings.from_environment()


def test_a_busy_port_names_its_variable_and_zero_picks_distinct_free_ports(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings = StackSettings(
            dir=tmp_path, prefect_port=0, dask_port=0, dask_dashboard_port=0, s3_port=taken,
            stac_port=0,
        )  # fmt: skip
        with pytest.raises(UsageError, match=f"Port {taken} .*GEOPROC_STACK_S3_PORT"):
            resolve_ports(settings)
    free = resolve_ports(StackSettings(dir=tmp_path, **dict.fromkeys(
        ("prefect_port", "dask_port", "dask_dashboard_port", "s3_port", "stac_port"), 0)))  # fmt: skip
    assert len(set(free.values())) == 5 and all(p > 0 for p in free.values())


def test_down_stops_groups_and_escaped_children_and_verifies_nothing_is_left(tmp_path):
    stack_id = uuid.uuid4().hex
    env = {**os.environ, STACK_ID_VARIABLE: stack_id}
    # a service whose child opens its own session (as Prefect's flow-run processes do),
    # and which ignores SIGTERM, so only the sweep by stack id and SIGKILL can stop it
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import signal, time;"
        " signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    service = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    escaped = int(service.stdout.readline())
    plain = subprocess.Popen(["sleep", "600"], env=env, start_new_session=True)
    assert os.getpgid(escaped) != service.pid  # really outside the service's group
    state = StackState(stack_id, tmp_path, {}, {}, {"svc": service.pid, "plain": plain.pid})
    (tmp_path / "stack.json").write_text(state.to_json())
    assert stack_status(tmp_path)["processes"] == 3

    t0 = time.monotonic()
    stopped = stack_down(tmp_path, grace_s=1.0)
    assert sorted(stopped) == ["plain", "svc"]
    assert time.monotonic() - t0 < 15
    # `down` reaps its own children's exit statuses, so ask the kernel, not Popen
    for pid in (service.pid, plain.pid, escaped):  # the first ignored SIGTERM: SIGKILL got it
        assert not _alive(pid), pid
    assert not (tmp_path / "stack.json").exists()
    assert stack_down(tmp_path) == []  # idempotent


def test_stack_commands_without_a_stack(monkeypatch, tmp_path, capsys):
    from geoproc.cli import main

    monkeypatch.setenv("GEOPROC_STACK_DIR", str(tmp_path))
    assert main(["stack", "down"]) == 0
    assert "nothing to stop" in capsys.readouterr().out
    assert main(["stack", "status"]) == 1
    monkeypatch.setenv("GEOPROC_STACK_DASK_WORKERS", "0")
    assert main(["stack", "up"]) == 2
    assert "GEOPROC_STACK_DASK_WORKERS" in capsys.readouterr().err
