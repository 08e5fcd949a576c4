"""The CLI parser builds without importing the heavy stacks (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "prefect", "distributed", "rio_tiler", "dask", "xarray", "zarr", "rasterio")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_building_the_full_parser_imports_neither_torch_nor_prefect():
    loaded = _imported_after("from geoproc.cli import build_parser; build_parser([])")
    assert "geoproc.commands.run" in loaded and "geoproc.commands.models" in loaded  # all built
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize("argv", [["cube", "build", "--help"], ["run", "--help"], ["--help"]])
def test_help_exits_0_without_heavy_imports(argv):
    code = (
        "from geoproc.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code"
    )
    loaded = _imported_after(code)
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
