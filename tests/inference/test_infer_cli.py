"""`geoproc infer`: input and weight checks before anything is written, grid kept, resumable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from geoproc.cli import main
from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.inference.engine import EngineOptions, run_inference
from geoproc.inference.kernel import ModelKernel
from geoproc.inference.registry import PACKAGE_SOURCE, find_card

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def cube_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("infer") / "cube.zarr")
    write_synthetic_cube(url, nt=2, ny=64, nx=48, chunks=(1, 32, 32), seed=2)
    return url


def test_infer_help_imports_no_torch():
    code = (
        "import sys, json\nfrom geoproc.cli import main\n"
        "try:\n    main(['infer', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "--blend" in out.stdout and "geoproc.commands.infer" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "xarray", "zarr", "dask")}


def test_missing_bands_exit_2_naming_them_and_the_card(cube_url, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    code = main(["infer", "--model", "tiny-fcn", "--cube", cube_url, "--out", str(out),
                 "--variables", "nir08=B8A", "swir22=B12"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "['B8A', 'B12']" in err and "tiny-fcn@1.0.0" in err
    assert "Traceback" not in err and not out.exists()


def test_weights_that_differ_from_the_card_are_refused(cube_url, tmp_path, capsys):
    card = find_card("tiny-fcn")
    folder = tmp_path / "models"
    shutil.copytree(PACKAGE_SOURCE, folder)
    weights = folder / card.weights_href
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last tensor
    weights.write_bytes(bytes(data))
    out = tmp_path / "out.zarr"
    card_path = folder / f"{card.name}-{card.version}.json"
    code = main(["infer", "--model", str(card_path), "--cube", cube_url, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and card.sha256 in err and "corrupt or was replaced" in err
    assert not out.exists()


def test_infer_writes_the_cube_grid_and_resumes(cube_url, tmp_path, capsys):
    out = str(tmp_path / "p.zarr")
    argv = ["infer", "--model", "tiny-fcn", "--cube", cube_url, "--out", out, "--device", "cpu",
            "--blend", "none"]  # fmt: skip
    assert main(argv[:-2]) == 0  # --blend auto: a conv card without tile size is cropped
    assert "blend none: 8 chunks written, 0 already done" in capsys.readouterr().out
    cube, product = xr.open_zarr(cube_url), xr.open_zarr(out)
    assert product.water_probability.dims == ("time", "y", "x")
    np.testing.assert_array_equal(product.x.values, cube.x.values)
    np.testing.assert_array_equal(product.y.values, cube.y.values)
    np.testing.assert_array_equal(product.time.values, cube.time.values)
    assert product.rio.crs == cube.rio.crs and product.rio.transform() == cube.rio.transform()
    # same values as the library engine with the same options
    ref = str(tmp_path / "ref.zarr")
    run_inference(cube_url, ModelKernel(find_card("tiny-fcn")), ref, options=EngineOptions())
    np.testing.assert_array_equal(
        product.water_probability.values, xr.open_zarr(ref).water_probability.values
    )
    # a rerun finds every chunk done
    assert main(argv) == 0
    assert "0 chunks written, 8 already done" in capsys.readouterr().out
    # blending gives the same map for a conv model whose halo covers its receptive field:
    # pixels within the halo of an inner window edge get no weight
    blended = str(tmp_path / "b.zarr")
    argv_blend = ["infer", "--model", "tiny-fcn", "--cube", cube_url, "--out", blended,
                  "--blend", "linear", "--tile", "32", "--overlap", "12"]  # fmt: skip
    assert main(argv_blend) == 0
    np.testing.assert_allclose(
        xr.open_zarr(blended).water_probability.values,
        product.water_probability.values,
        atol=1e-5,
    )


def test_bad_overlap_is_a_usage_error_before_writing(cube_url, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    code = main(["infer", "--model", "tiny-fcn", "--cube", cube_url, "--out", str(out),
                 "--tile", "16", "--overlap", "16"])  # fmt: skip
    assert code == 2 and "--overlap" in capsys.readouterr().err
    assert not Path(out).exists()
