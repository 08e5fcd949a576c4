"""Store locks: processes racing at one instant get exactly one winner; only the owner releases."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from geoproc import storage
from geoproc.errors import StoreLockedError
from geoproc.store_lock import acquire, hold, lock_location, release

RACERS = 6
ROUNDS = 3

# moto's threaded server checks If-None-Match and then stores the object without a lock
# (moto 5.2 s3/responses.py), so racing PUTs can all pass its check - real S3 decides
# conditional writes atomically. The S3 race therefore runs against a moto server that
# handles one request at a time (same S3 API, linearised like S3's conditional writes).
_SERIAL_MOTO = """
import sys
import moto.server as m
_run = m.run_simple
def _serial(*a, **k):
    k["threaded"] = False
    return _run(*a, **k)
m.run_simple = _serial
m.main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def serial_s3_endpoint():
    """A moto server that answers one request at a time, as S3 decides conditional writes."""
    from tests.helpers.servers import moto_s3_server

    with moto_s3_server([sys.executable, "-c", _SERIAL_MOTO]) as url:
        yield url


@pytest.fixture
def serial_s3_bucket(serial_s3_endpoint, monkeypatch) -> str:
    from tests.helpers.servers import create_bucket

    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", serial_s3_endpoint)
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "testing")
    create_bucket(serial_s3_endpoint, "lock-race")
    return "lock-race"


_RACER = """
import json, sys, time
from geoproc import storage
from geoproc.errors import StoreLockedError
from geoproc.store_lock import hold
loc = storage.parse_url(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.0005)
t0 = time.time()
try:
    with hold(loc):
        t1 = time.time()
        time.sleep(3.0)
        t2 = time.time()
    print(json.dumps({"acquired": True, "tried": t0, "held": [t1, t2]}), flush=True)
except StoreLockedError:
    print(json.dumps({"acquired": False, "tried": t0}), flush=True)
"""


def _race(url: str) -> list[dict]:
    """Start RACERS processes that all try the lock at the same wall-clock instant."""
    start = time.time() + 8.0  # time for every interpreter to start and import
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, url, repr(start)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(RACERS)
    ]  # fmt: skip
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes


def _rounds(url: str) -> list[int]:
    """Winners per round whose attempts overlapped the first holder; never two holders at once."""
    winners = []
    for _ in range(ROUNDS):
        outcomes = _race(url)
        held = sorted(o["held"] for o in outcomes if o["acquired"])
        assert held, outcomes
        for (_, end), (begin, _) in zip(held, held[1:], strict=False):
            assert begin >= end - 0.05, f"two holders at once: {held}"
        first_end = held[0][1]
        contenders = [o for o in outcomes if o["tried"] < first_end]
        winners.append(sum(o["acquired"] for o in contenders))
        assert not storage.exists(lock_location(storage.parse_url(url))), "winner released"
    return winners


def test_local_race_has_exactly_one_winner_per_round(tmp_path):
    winners = _rounds(str(tmp_path / "cube.zarr"))
    print(f"local lock race: {RACERS} processes x {ROUNDS} rounds, winners per round {winners}")
    assert winners == [1] * ROUNDS


@pytest.mark.integration
def test_s3_race_has_exactly_one_winner_per_round(serial_s3_bucket):
    url = f"s3://{serial_s3_bucket}/run/cubes/T.zarr"
    winners = _rounds(url)
    print(f"S3 (moto) lock race: {RACERS} processes x {ROUNDS} rounds, winners per round {winners}")
    assert winners == [1] * ROUNDS


def _owner_checks(url: str) -> None:
    loc = storage.parse_url(url)
    lock = lock_location(loc)
    with hold(loc) as token:
        with pytest.raises(StoreLockedError, match="pid"):
            with hold(loc):
                pass
        # Someone replaced the lock (e.g. took over a lock they judged stale): ours must
        # not delete theirs on the way out.
        other = {"host": "elsewhere", "pid": 1, "token": "theirs"}
        storage.write_bytes_atomic(lock, json.dumps(other).encode())
        assert not release(lock, token)
    assert json.loads(storage.read_bytes(lock))["token"] == "theirs"
    assert release(lock, "theirs") and not storage.exists(lock)


def test_only_the_owner_removes_a_local_lock(tmp_path):
    _owner_checks(str(tmp_path / "cube.zarr"))


@pytest.mark.integration
def test_only_the_owner_removes_an_s3_lock(s3_bucket):
    _owner_checks(f"s3://{s3_bucket}/run/cubes/T.zarr")


@pytest.mark.integration
def test_s3_lock_of_a_dead_local_process_is_taken_over(s3_bucket):
    loc = storage.parse_url(f"s3://{s3_bucket}/run/cubes/T.zarr")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    body = {"host": socket.gethostname(), "pid": dead.pid, "token": "old"}
    storage.write_bytes_atomic(lock_location(loc), json.dumps(body).encode())
    with hold(loc) as token:
        held = json.loads(storage.read_bytes(lock_location(loc)))
        assert held["token"] == token and held["pid"] == os.getpid()
    assert not storage.exists(lock_location(loc))
    live = {"host": "another-host", "pid": 123, "token": "x"}
    storage.write_bytes_atomic(lock_location(loc), json.dumps(live).encode())
    with pytest.raises(StoreLockedError, match="another-host"):
        acquire(lock_location(loc), b"{}")
