"""Peak memory does not grow with the number of tiles: tiles are built one at a time."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from affine import Affine

from tests.helpers.cube_items import make_item

SIZE = 512
TILES = ["32N_0032_0342", "32N_0032_0343", "32N_0033_0342", "32N_0033_0343"]


def _peak_mib(catalog, out, aoi) -> float:
    code = (
        "import resource, sys; from geoproc.cube.store import build_cubes; "
        "build_cubes(sys.argv[1], collections=['HLSL30_2.0'], aoi=sys.argv[3], start='2024-01-01', "
        f"end='2024-12-31', out=sys.argv[2], tile_size_px={SIZE}); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(catalog), str(out), aoi],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_four_tiles_peak_within_ten_percent_of_one(tmp_path):
    side = SIZE * 30.0
    x0, y1 = 32 * side - 300, 344 * side + 300
    n = int((2 * side + 600) / 30)
    rng = np.random.default_rng(1)
    for i in range(4):
        bands = {
            k: rng.integers(0, 3000, (n, n)).astype(np.int16)
            for k in ("B02", "B03", "B04", "B05", "B06", "B07", "B10")
        }
        make_item(tmp_path, f"big{i}", datetime=f"2024-0{i + 1}-10T10:00:00Z", transform=Affine(30, 0, x0, 0, -30, y1),
                  shape=(n, n), bands=bands, fmask=np.zeros((n, n), np.uint8))  # fmt: skip
    one = _peak_mib(tmp_path / "items", tmp_path / "one", TILES[0])
    four = _peak_mib(tmp_path / "items", tmp_path / "four", ",".join(TILES))
    print(f"peak RSS: 1 tile {one:.0f} MiB, 4 tiles {four:.0f} MiB")
    assert four <= 1.10 * one
