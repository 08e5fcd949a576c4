"""The local stack: every service of a geoproc deployment as its own process on loopback.

Why: the path a scheduled run takes in production (Prefect server -> worker on a work
pool -> flow run -> Dask scheduler and workers -> object storage, catalog over HTTP) must
be exercisable on one laptop or CI machine without containers. A small supervisor in the
spirit of foreman/honcho ("Procfile" process managers): each service runs in its own
process group with a log and a pid file under a state folder, is health-checked before
anything that depends on it starts, and `down` stops the groups and then sweeps every
process that still carries the stack's id in its environment (children that open their
own session, such as Prefect's flow-run processes), so nothing is left behind.

The image in `infra/docker/` runs the same commands (`ENTRYPOINT_COMMANDS`), so what
works here is what runs in the cluster. Configuration comes only from `GEOPROC_STACK_*`
environment variables (`StackSettings`); the stack never imports Prefect, it starts the
`prefect` command and talks to the server's REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geoproc.errors import GeoprocError, UsageError

ENV_PREFIX = "GEOPROC_STACK_"
STACK_ID_VARIABLE = "GEOPROC_STACK_ID"
HOST = "127.0.0.1"
S3_ACCESS_KEY_ID = "geoproc-local"
S3_SECRET_ACCESS_KEY = "geoproc-local-secret"

ENTRYPOINT_COMMANDS: dict[str, tuple[str, ...]] = {
    "prefect-server": ("prefect", "server", "start"),
    "prefect-worker": ("prefect", "worker", "start"),
    "dask-scheduler": ("dask", "scheduler"),
    "dask-worker": ("dask", "worker"),
    "stac-api": ("geoproc", "stac", "serve"),
}
"""Role -> command: the container image's entry point (`infra/docker/entrypoint.sh`) maps the
same roles to the same commands, and a test holds the two together."""


class StackError(GeoprocError):
    """A service of the local stack did not start, or did not stop."""


class StackSettings(BaseSettings):
    """Everything the stack reads, from `GEOPROC_STACK_*` variables; a port of 0 means any free one."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    dir: Path = Field(default=Path(".geoproc-stack"), description="state: logs, pids, env file")
    prefect_port: int = Field(default=4200, description="Prefect server API and UI")
    dask_port: int = Field(default=8786, description="Dask scheduler")
    dask_dashboard_port: int = Field(default=8787, description="Dask scheduler HTTP (dashboard)")
    s3_port: int = Field(default=9000, description="S3 API (moto server)")
    stac_port: int = Field(default=8080, description="STAC API over the archive")
    dask_workers: int = Field(default=2, ge=1, le=64, description="Dask worker processes")
    dask_threads: int = Field(default=1, ge=1, le=64, description="threads per Dask worker")
    dask_memory_limit: str = Field(
        default="4GiB",
        description="memory limit per Dask worker (measured peak of the blocked product stage: "
        "1.3 GiB on 512² tiles, `geoproc bench products`; cube builds 0.3 GiB)",
    )
    bucket: str = Field(default="geoproc", description="bucket created on the S3 server")
    work_pool: str = Field(default="geoproc-local", description="Prefect process work pool")
    archive: Path | None = Field(default=None, description="archive to serve (default DIR/archive)")
    archive_size: str = Field(default="small", description="size generated when none exists")
    workdir: Path | None = Field(default=None, description="flow runs' working dir (default: cwd)")
    timeout_s: float = Field(default=180.0, gt=0, description="health-check wait per service")

    @field_validator("prefect_port", "dask_port", "dask_dashboard_port", "s3_port", "stac_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("must be between 0 (any free port) and 65535")
        return value

    @classmethod
    def from_environment(cls) -> StackSettings:
        """The settings, or a `UsageError` naming the variable to change."""
        try:
            return cls()
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ENV_PREFIX + str(first["loc"][0]).upper()
            raise UsageError(
                f"{name}={first.get('input')!r} is invalid ({first['msg']}): change or unset {name}."
            ) from None


@dataclass(frozen=True)
class Service:
    """One long-running process of the stack and how to tell that it is ready."""

    name: str
    argv: tuple[str, ...]
    """Full command line; argv[0] is an absolute executable path."""
    health_url: str
    """Polled until `ready(body)` holds."""
    ready: Callable[[bytes], bool]
    role: str | None = None
    """The image entry point role that runs the same command (None: local stand-in only)."""
    port_variable: str | None = None
    """The `GEOPROC_STACK_*` variable that sets this service's port, for error messages."""
    method: str = "GET"


@dataclass
class StackState:
    """What `up` started, as written to DIR/stack.json: enough for `down` in another process."""

    id: str
    dir: Path
    urls: dict[str, str]
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "dir": str(self.dir),
                "urls": self.urls,
                "env": self.env,
                "pids": self.pids,
            },
            indent=2,
        )

    @classmethod
    def load(cls, state_dir: Path) -> StackState | None:
        path = Path(state_dir) / "stack.json"
        if not path.is_file():
            return None
        doc = json.loads(path.read_text())
        return cls(doc["id"], Path(doc["dir"]), doc["urls"], doc["env"], doc["pids"])


def executable(name: str) -> str:
    """The command `name` from this interpreter's environment (the venv), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        hint = " (a test extra: `pip install -e '.[test]'`)" if name == "moto_server" else ""
        raise StackError(
            f"The `{name}` command was not found: install geoproc with its dependencies "
            f"(`make install`){hint} and run the stack from that environment."
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def resolve_ports(settings: StackSettings) -> dict[str, int]:
    """Port per service: the configured one (checked free) or a free one for 0."""
    ports: dict[str, int] = {}
    for name in ("prefect_port", "dask_port", "dask_dashboard_port", "s3_port", "stac_port"):
        wanted = getattr(settings, name)
        if wanted == 0:
            port = _free_port()
            while port in ports.values():
                port = _free_port()
        else:
            if wanted in ports.values() or not _port_is_free(wanted):
                variable = ENV_PREFIX + name.upper()
                raise UsageError(
                    f"Port {wanted} on {HOST} is already in use: set {variable} to a free port "
                    f"(or 0 for any free port), or stop what listens there."
                )
            port = wanted
        ports[name.removesuffix("_port")] = port
    return ports


def stack_urls(ports: dict[str, int], *, bucket: str) -> dict[str, str]:
    return {
        "prefect_api": f"http://{HOST}:{ports['prefect']}/api",
        "prefect_ui": f"http://{HOST}:{ports['prefect']}",
        "dask_scheduler": f"tcp://{HOST}:{ports['dask']}",
        "dask_dashboard": f"http://{HOST}:{ports['dask_dashboard']}/status",
        "s3_endpoint": f"http://{HOST}:{ports['s3']}",
        "stac_api": f"http://{HOST}:{ports['stac']}",
        "out": f"s3://{bucket}/geoproc",
    }


def client_environment(
    settings: StackSettings, urls: dict[str, str], *, state_dir: Path
) -> dict[str, str]:
    """Variables a shell (and every service) needs to use the stack: written to DIR/stack.env."""
    return {
        "PREFECT_API_URL": urls["prefect_api"],
        "PREFECT_UI_URL": urls["prefect_ui"],
        "PREFECT_HOME": str(state_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GEOPROC_DASK_ADDRESS": urls["dask_scheduler"],
        "GEOPROC_S3_ENDPOINT_URL": urls["s3_endpoint"],
        "GEOPROC_S3_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
        "GEOPROC_S3_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
        "GEOPROC_S3_ANONYMOUS": "false",
        "GEOPROC_STACK_DIR": str(state_dir),
        "GEOPROC_STACK_CATALOG_URL": urls["stac_api"],
        "GEOPROC_STACK_OUT": urls["out"],
        "GEOPROC_STACK_WORK_POOL": settings.work_pool,
    }


def _json_ready(check: Callable[[object], bool]) -> Callable[[bytes], bool]:
    def ready(body: bytes) -> bool:
        try:
            return bool(check(json.loads(body)))
        except ValueError:
            return False

    return ready


def _worker_named(name: str) -> Callable[[bytes], bool]:
    def check(doc: object) -> bool:
        workers = doc.get("workers", {}) if isinstance(doc, dict) else {}
        return any(w.get("name") == name for w in workers.values())

    return _json_ready(check)


def services(settings: StackSettings, ports: dict[str, int], *, archive: Path) -> list[Service]:
    """The stack's processes in start order; pure, so tests compare them with the image."""
    urls = stack_urls(ports, bucket=settings.bucket)
    state_dir = settings.dir.resolve()

    def cmd(role: str, *args: str) -> tuple[str, ...]:
        program, *sub = ENTRYPOINT_COMMANDS[role]
        return (executable(program), *sub, *args)

    dashboard = f"http://{HOST}:{ports['dask_dashboard']}"
    plan = [
        Service(
            "s3",
            (executable("moto_server"), "-H", HOST, "-p", str(ports["s3"])),
            f"{urls['s3_endpoint']}/moto-api/",
            lambda body: True,
            port_variable=f"{ENV_PREFIX}S3_PORT",
        ),
        Service(
            "stac-api",
            cmd("stac-api", str(archive), "--port", str(ports["stac"])),
            f"{urls['stac_api']}/collections",
            _json_ready(lambda doc: isinstance(doc, dict) and bool(doc.get("collections"))),
            role="stac-api",
            port_variable=f"{ENV_PREFIX}STAC_PORT",
        ),
        Service(
            "dask-scheduler",
            cmd(
                "dask-scheduler",
                "--host",
                HOST,
                "--port",
                str(ports["dask"]),
                "--dashboard-address",
                f"{HOST}:{ports['dask_dashboard']}",
            ),  # fmt: skip
            f"{dashboard}/health",
            lambda body: body.strip() == b"ok",
            role="dask-scheduler",
            port_variable=f"{ENV_PREFIX}DASK_PORT",
        ),
    ]
    for i in range(1, settings.dask_workers + 1):
        name = f"dask-worker-{i}"
        plan.append(
            Service(
                name,
                cmd(
                    "dask-worker",
                    urls["dask_scheduler"],
                    "--name",
                    name,
                    "--nthreads",
                    str(settings.dask_threads),
                    "--memory-limit",
                    settings.dask_memory_limit,
                    "--no-dashboard",
                    "--host",
                    HOST,
                    "--local-directory",
                    str(state_dir / "dask"),
                ),  # fmt: skip
                f"{dashboard}/json/identity.json",
                _worker_named(name),
                role="dask-worker",
            )
        )
    plan += [
        Service(
            "prefect-server",
            cmd("prefect-server", "--host", HOST, "--port", str(ports["prefect"])),
            f"{urls['prefect_api']}/health",
            _json_ready(lambda doc: doc is True),
            role="prefect-server",
            port_variable=f"{ENV_PREFIX}PREFECT_PORT",
        ),
        Service(
            "prefect-worker",
            cmd("prefect-worker", "--pool", settings.work_pool, "--type", "process"),
            f"{urls['prefect_api']}/work_pools/{settings.work_pool}/workers/filter",
            _json_ready(lambda doc: isinstance(doc, list) and len(doc) > 0),
            role="prefect-worker",
            method="POST",
        ),
    ]
    return plan


def _probe(service: Service) -> bool:
    data = b"{}" if service.method == "POST" else None
    request = urllib.request.Request(
        service.health_url,
        data=data,
        method=service.method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as resp:
            return resp.status == 200 and service.ready(resp.read())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Launcher:
    """Starts processes into their own groups and records them as it goes."""

    def __init__(self, state: StackState, env: dict[str, str]):
        self.state = state
        self.env = env
        (state.dir / "logs").mkdir(parents=True, exist_ok=True)
        (state.dir / "pids").mkdir(parents=True, exist_ok=True)

    def start(self, service: Service) -> subprocess.Popen:
        log = self.state.dir / "logs" / f"{service.name}.log"
        with open(log, "ab") as sink:
            proc = subprocess.Popen(
                service.argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.env.get("GEOPROC_STACK_WORKDIR") or None,
                start_new_session=True,  # own process group: `down` kills the whole group
            )
        self.state.pids[service.name] = proc.pid
        (self.state.dir / "pids" / f"{service.name}.pid").write_text(f"{proc.pid}\n")
        self.save()
        return proc

    def save(self) -> None:
        (self.state.dir / "stack.json").write_text(self.state.to_json())


def _wait_all(
    started: list[tuple[Service, subprocess.Popen]], state_dir: Path, *, timeout_s: float
) -> None:
    pending = list(started)
    deadline = time.monotonic() + timeout_s
    while pending:
        for service, proc in list(pending):
            if proc.poll() is not None:
                log = state_dir / "logs" / f"{service.name}.log"
                hint = (
                    f" If its port is taken, set {service.port_variable} to a free port (0 = any)."
                    if service.port_variable
                    else ""
                )
                raise StackError(
                    f"Service {service.name} exited at start with code {proc.returncode}; "
                    f"see {log}.{hint}\n{_log_tail(log)}"
                )
            if _probe(service):
                pending.remove((service, proc))
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s, _ in pending)
            raise StackError(
                f"Service(s) {names} did not become healthy within {timeout_s:.0f} s: read their "
                f"logs in {state_dir / 'logs'}, or raise {ENV_PREFIX}TIMEOUT_S on a slow machine."
            )
        if pending:
            time.sleep(0.25)


def _http_json(url: str, *, method: str = "GET", body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def _create_bucket(endpoint: str, bucket: str) -> None:
    """CreateBucket through the S3 API (botocore ships with s3fs), as on any S3 server."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY_ID,
        aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        region_name="us-east-1",
    )
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    if bucket not in names:
        raise StackError(
            f"The S3 server did not create bucket {bucket!r}: set {ENV_PREFIX}BUCKET to a valid "
            "bucket name (3-63 lowercase letters, digits, hyphens)."
        )


def _process_pool_template(env: dict[str, str], *, workdir: Path) -> dict:
    """Prefect's default process-pool job template with the flow runs' working dir set.

    Why: a deployment made with a file entrypoint (`flows/regional.py:regional_mapping`,
    relative to where it was deployed) loads only if the flow run starts in that folder;
    Prefect's process worker otherwise starts each run in a fresh temporary folder.
    """
    out = subprocess.run(
        [executable("prefect"), "work-pool", "get-default-base-job-template", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise StackError(
            f"`prefect work-pool get-default-base-job-template` failed: {out.stderr[-500:]} "
            "(check the Prefect installation)."
        )
    template = json.loads(out.stdout)
    template["variables"]["properties"]["working_dir"]["default"] = str(workdir)
    return template


def _ensure_work_pool(api: str, name: str, template: dict) -> None:
    try:
        _http_json(
            f"{api}/work_pools/",
            method="POST",
            body={"name": name, "type": "process", "base_job_template": template},
        )
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: exists already (a reused state dir): update it
            raise StackError(f"Creating work pool {name!r} failed: HTTP {exc.code}") from exc
        _http_json(f"{api}/work_pools/{name}", method="PATCH", body={"base_job_template": template})


def _ensure_archive(settings: StackSettings, state_dir: Path) -> Path:
    archive = (settings.archive or state_dir / "archive").resolve()
    if (archive / "items").is_dir() and any((archive / "items").iterdir()):
        return archive
    from geoproc.dev.sample import create_archive

    print(f"generating the {settings.archive_size} sample archive in {archive} ...", flush=True)
    return Path(create_archive(archive, seed=0, size=settings.archive_size))


def stack_up(settings: StackSettings | None = None) -> StackState:
    """Start every service, health-check each, write DIR/stack.env; on any failure stop them all."""
    settings = settings or StackSettings.from_environment()
    state_dir = settings.dir.expanduser().resolve()
    previous = StackState.load(state_dir)
    if previous is not None and _live_processes(previous):
        raise UsageError(
            f"A stack is already running from {state_dir}: run `geoproc stack down` first, or set "
            f"{ENV_PREFIX}DIR to another folder."
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("logs", "pids"):
        shutil.rmtree(state_dir / stale, ignore_errors=True)
    archive = _ensure_archive(settings, state_dir)
    ports = resolve_ports(settings)
    urls = stack_urls(ports, bucket=settings.bucket)
    workdir = (settings.workdir or Path.cwd()).resolve()
    stack_id = uuid.uuid4().hex
    client_env = client_environment(settings, urls, state_dir=state_dir)
    process_env = {
        **os.environ,
        **client_env,
        STACK_ID_VARIABLE: stack_id,
        "GEOPROC_STACK_WORKDIR": str(workdir),
        "PYTHONUNBUFFERED": "1",
    }
    state = StackState(stack_id, state_dir, urls, client_env)
    launcher = _Launcher(state, process_env)
    plan = {s.name: s for s in services(settings, ports, archive=archive)}
    try:
        first_wave = [n for n in plan if n != "prefect-worker"]
        started = [(plan[n], launcher.start(plan[n])) for n in first_wave]
        template = _process_pool_template(process_env, workdir=workdir)  # while servers start
        _wait_all(started, state_dir, timeout_s=settings.timeout_s)
        _create_bucket(urls["s3_endpoint"], settings.bucket)
        _ensure_work_pool(urls["prefect_api"], settings.work_pool, template)
        worker = plan["prefect-worker"]
        _wait_all([(worker, launcher.start(worker))], state_dir, timeout_s=settings.timeout_s)
    except BaseException:
        stack_down(state_dir)
        raise
    env_file = state_dir / "stack.env"
    env_file.write_text("".join(f"export {k}={_shell_quote(v)}\n" for k, v in client_env.items()))
    launcher.save()
    return state


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def _processes_of(state: StackState, *, pgid: int | None = None) -> list:
    """Live processes carrying this stack's id in their environment (optionally of one group).

    The id, not the recorded pids, decides: on a shared machine a pid from a stale state
    file may belong to somebody else by now, and that process must never be signalled.
    """
    import psutil

    found = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        try:
            if pgid is not None and os.getpgid(proc.pid) != pgid:
                continue
            if proc.environ().get(STACK_ID_VARIABLE) == state.id:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def _live_processes(state: StackState) -> list[int]:
    return [p.pid for p in _processes_of(state)]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap(pids: Iterable[int]) -> None:
    """Collect exit statuses of our own children (when `up` ran in this process)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def stack_down(state_dir: Path | str | None = None, *, grace_s: float = 10.0) -> list[str]:
    """Stop every service (workers before servers), then verify no process of the stack is left.

    Returns the names of the services that were stopped; raises `StackError` listing any
    process that survived SIGKILL.
    """
    import psutil

    if state_dir is None:
        state_dir = StackSettings.from_environment().dir
    state_dir = Path(state_dir).expanduser().resolve()
    state = StackState.load(state_dir)
    if state is None:
        return []
    order = list(reversed(state.pids))
    order.sort(key=lambda n: n != "prefect-worker")  # the worker first: it polls the server
    for name in order:
        pgid = state.pids[name]
        if not _processes_of(state, pgid=pgid):
            continue  # gone already (or the pid is somebody else's by now): never signal it
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            _reap(state.pids.values())
            if not _processes_of(state, pgid=pgid):
                break
            time.sleep(0.1)
        if _processes_of(state, pgid=pgid):
            _signal_group(pgid, signal.SIGKILL)
    for proc in _processes_of(state):  # escaped their group (own session) but carry our id
        with contextlib.suppress(psutil.Error):
            proc.kill()
    deadline = time.monotonic() + grace_s
    left = _processes_of(state)
    while left and time.monotonic() < deadline:
        _reap(state.pids.values())
        time.sleep(0.1)
        left = _processes_of(state)
    if left:
        raise StackError(
            f"{len(left)} process(es) of the stack survived SIGKILL (pids "
            f"{', '.join(str(p.pid) for p in left)}): stop them by pid."
        )
    stopped = list(state.pids)
    (state_dir / "stack.json").unlink(missing_ok=True)
    (state_dir / "stack.env").unlink(missing_ok=True)
    shutil.rmtree(state_dir / "pids", ignore_errors=True)
    return stopped


def stack_status(state_dir: Path | str | None = None) -> dict[str, object]:
    """Which services are up (health probe) and their URLs; empty when no stack was started."""
    if state_dir is None:
        state_dir = StackSettings.from_environment().dir
    state = StackState.load(Path(state_dir).expanduser().resolve())
    if state is None:
        return {}
    return {
        "dir": str(state.dir),
        "urls": state.urls,
        "services": {
            name: bool(_processes_of(state, pgid=pgid)) for name, pgid in state.pids.items()
        },
        "processes": len(_processes_of(state)),
    }
