"""Render geoproc's Kubernetes manifests for one variant: `base/` plus an overlay's patches.

Why not kustomize or Helm: neither binary is assumed; the overlays are kustomize-style
JSON Patches (RFC 6902) applied here in plain Python, and the Prefect work pool's base
job template (`base/work-pool-template.json`) is packed into the ConfigMap the worker
mounts. Usage:

    python infra/k8s/render.py cuda --image registry.example.org/geoproc:0.1.0-cuda > geoproc.yaml
    kubectl apply -f geoproc.yaml
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
VARIANTS = ("cpu", "cuda")
IMAGE_PLACEHOLDER = "${GEOPROC_IMAGE}"
DEFAULT_IMAGE = "ghcr.io/geoproc/geoproc:0.1.0-{variant}"
BASE_ORDER = (
    "namespace.yaml",
    "config.yaml",
    "object-storage-secret.yaml",
    "prefect-worker-rbac.yaml",
    "prefect-worker.yaml",
    "daskcluster.yaml",
)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_op(doc: Any, op: dict) -> None:
    *parents, last = _pointer(op["path"])
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if kind == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            node[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[index]
        else:
            raise ValueError(f"unsupported patch op {kind!r}")
        return
    if kind == "replace" and last not in node:
        raise KeyError(f"replace of a missing path {op['path']}")
    if kind in ("add", "replace"):
        node[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del node[last]
    else:
        raise ValueError(f"unsupported patch op {kind!r}")


def _replace_image(node: Any, image: str) -> Any:
    if isinstance(node, dict):
        return {k: _replace_image(v, image) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_image(v, image) for v in node]
    if isinstance(node, str):
        return node.replace(IMAGE_PLACEHOLDER, image)
    return node


def work_pool_template(variant: str, *, image: str | None = None) -> dict:
    """The Prefect Kubernetes work pool's base job template with the variant's image."""
    template = json.loads((HERE / "base" / "work-pool-template.json").read_text())
    return _replace_image(template, image or DEFAULT_IMAGE.format(variant=variant))


def render(variant: str, *, image: str | None = None) -> list[dict]:
    """Every manifest of `variant`, patched, with the image filled in."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    image = image or DEFAULT_IMAGE.format(variant=variant)
    docs: list[dict] = []
    for name in BASE_ORDER:
        docs += [d for d in yaml.safe_load_all((HERE / "base" / name).read_text()) if d]
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "geoproc-work-pool-template",
                "namespace": "geoproc",
                "labels": {"app.kubernetes.io/part-of": "geoproc"},
            },
            "data": {
                "work-pool-template.json": json.dumps(
                    work_pool_template(variant, image=image), indent=2
                )
            },
        }
    )
    overlay = yaml.safe_load((HERE / "overlays" / f"{variant}.yaml").read_text())
    for patch in overlay.get("patches") or []:
        target = patch["target"]
        matches = [
            d
            for d in docs
            if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
        ]
        if len(matches) != 1:
            raise ValueError(f"overlay {variant}: target {target} matches {len(matches)} manifests")
        for op in patch["ops"]:
            _apply_op(matches[0], op)
    return [_replace_image(d, image) for d in docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--image", default=None, help="image reference (default: %(default)s)")
    args = parser.parse_args(argv)
    yaml.safe_dump_all(render(args.variant, image=args.image), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
