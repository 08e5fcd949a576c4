"""Kill a run at a chosen stage: a CLI run in its own process group, watched until a predicate holds.

Why a watcher rather than a fixed delay: how long each stage takes depends on the machine
and its load, so a kill "at 3 s" lands in a different stage on every run. The watcher
polls the run's own traces (its progress lines on stderr and the files it has written so
far) every few milliseconds and sends SIGKILL to the whole process group the moment the
wanted stage is visibly under way, then records what the run had reached, so a test can
check that the stage it meant to interrupt was the one it interrupted.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.01


@dataclass
class WatchedRun:
    """A subprocess whose stderr lines are collected as they come."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def saw(self, prefix: str) -> bool:
        """Whether a progress line starting with `prefix` has been printed."""
        return any(line.startswith(prefix) for line in list(self.lines))


@dataclass(frozen=True)
class KillOutcome:
    """What the watcher did: whether it killed, after how long, and the run's stderr so far."""

    killed: bool
    seconds: float
    returncode: int
    lines: tuple[str, ...]


def start(argv: Sequence[str], *, cwd: Path, env: dict | None = None) -> WatchedRun:
    """Start `argv` as the leader of a new process group (so its children die with it)."""
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, cwd=cwd, env=env,
    )  # fmt: skip
    run = WatchedRun(proc)

    def _read() -> None:
        for line in proc.stderr:
            run.lines.append(line.rstrip("\n"))

    run._reader = threading.Thread(target=_read, daemon=True)
    run._reader.start()
    return run


def kill_when(
    run: WatchedRun, ready: Callable[[WatchedRun], bool], *, timeout_s: float = 300.0
) -> KillOutcome:
    """SIGKILL the run's process group as soon as `ready(run)` is true; wait for it to end.

    If the run ends first, nothing is killed (`killed` is False) and the caller decides
    whether that still makes a meaningful test.
    """
    t0 = time.monotonic()
    killed = False
    try:
        while time.monotonic() - t0 < timeout_s:
            if run.proc.poll() is not None:
                break
            if ready(run):
                os.killpg(run.proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(POLL_S)
    finally:
        if run.proc.poll() is None and not killed:
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=60)
        if run._reader is not None:
            run._reader.join(timeout=10)
    return KillOutcome(killed, time.monotonic() - t0, run.proc.returncode, tuple(run.lines))


def tree_digest(root: Path, *, exclude_top: Sequence[str] = ("runs",)) -> dict[str, str]:
    """sha256 of every file under `root` (hidden ones included), minus top folders named.

    `runs/` holds the run reports, which carry timings and the catalog's port by design.
    """
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in exclude_top
    }


def any_chunk(store: Path) -> bool:
    """Whether a Zarr v2 store holds at least one chunk object (`VAR/0.0.0`)."""
    if not store.is_dir():
        return False
    return any(p.is_file() for p in store.glob("*/[0-9]*"))


def leftovers(root: Path) -> list[str]:
    """Files a killed writer typically leaves: locks, zarr partials, atomic-write temporaries."""
    if not root.is_dir():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and (p.name.endswith((".lock", ".partial")) or ".tmp-" in p.name)
    )
