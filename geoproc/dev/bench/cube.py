"""`geoproc bench cube`: cube build throughput against its floors and two peer libraries.

Why: a cube builder is I/O-bound; the honest yardstick is how close it gets to reading
every needed COG (decode floor) plus writing the same volume to Zarr (write floor), and
whether it keeps up with `stackstac.stack(...).to_zarr(...)` and
`odc.stac.load(...).to_zarr(...)` on the same items and grid. Every method moves the same
volume: (items x bands x tile pixels) per tile, reported as megapixels per second. Peak
memory is the largest RSS above the starting RSS, sampled every 10 ms.

Two modes: ``--archive`` (default ``--granules sample``: the sample archive's small
granules, in-process, where per-item overhead dominates) and ``--granules full``
(generated HLS-size COGs, every method a whole process: `geoproc.dev.bench._full_run`).
Both end with ``bench cube: geoproc/stackstac speed R, geoproc/floor R``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil

BENCH_COLLECTION = "HLSS30_2.0"
BENCH_ASSETS = ("B02", "B03", "B04", "B8A", "B11", "B12", "Fmask")
BENCH_BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cube", help="cube build vs decode/write floors, stackstac and odc-stac"
    )
    parser.add_argument(
        "--archive",
        default=None,
        help="folder made by `geoproc sample create` (small-granule mode; medium for the "
        "reference figures)",
    )
    parser.add_argument(
        "--granules",
        choices=("sample", "full"),
        default="sample",
        help="sample: the --archive's small granules; full: generated HLS S30-size COGs "
        "(1830² px, int16 deflate, 512² blocks, 7 per date), every method a whole process",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="where --granules full keeps its generated COGs (default ~/.cache/geoproc/bench)",
    )
    parser.add_argument("--granule-px", type=int, default=1830, help="granule side (full mode)")
    parser.add_argument("--dates", type=int, default=12, help="dates to generate (full mode)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds in alternating order (full mode; median)"
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side in pixels (default: the archive's aoi.geojson)",
    )
    parser.add_argument(
        "--max-tiles", type=int, default=None, help="only the first N tiles of the AOI"
    )
    parser.set_defaults(func=run)


class _PeakRSS:
    """Largest RSS above the start, sampled on a thread (works for threads GDAL starts too)."""

    def __enter__(self):
        self._proc = psutil.Process()
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def run(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError

    if args.granules == "full":
        from geoproc.dev.bench._full_run import run_full

        return run_full(args)
    if not args.archive:
        raise UsageError("--archive is required with --granules sample (or pass --granules full).")
    return _run_sample(args)


def _run_sample(args: argparse.Namespace) -> int:
    import json

    from geoproc.catalog.search import search_tiles
    from geoproc.cube.assemble import CubeOptions
    from geoproc.cube.store import build_cubes
    from geoproc.grid import tiles_for_aoi

    archive = Path(args.archive)
    aoi = archive / "aoi.geojson"
    props = json.loads(aoi.read_text())["features"][0]["properties"]
    tile_size = args.tile_size or int(props.get("tile_size_px", 1024))
    resolution = float(props.get("resolution", 30.0))
    tiles = tiles_for_aoi(str(aoi), tile_size_px=tile_size, resolution=resolution)[: args.max_tiles]
    start, end = props.get("start", "2024-01-01"), props.get("end", "2024-12-31")
    found = search_tiles(
        archive / "items", tiles, collections=[BENCH_COLLECTION], start=start, end=end
    )
    per_tile = {t.id: [i for s in found.tiles[t.id].steps for i in s.items] for t in tiles}
    n_layers = sum(len(v) for v in per_tile.values()) * len(BENCH_ASSETS)
    mpx = n_layers * tile_size * tile_size / 1e6
    results: dict[str, tuple[float, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="geoproc-bench-"))
    warnings.simplefilter("ignore")
    try:
        results["(a) decode floor: rasterio reads"] = _timed(lambda: _decode_floor(per_tile, tiles))
        results["(b) zarr write floor"] = _timed(
            lambda: _write_floor(tiles, n_layers, work / "floor")
        )
        options = CubeOptions(bands=BENCH_BANDS)
        aoi_ids = ",".join(t.id for t in tiles)
        results["(c) geoproc cube build"] = _timed(
            lambda: build_cubes(
                str(archive / "items"),
                collections=[BENCH_COLLECTION],
                aoi=aoi_ids,
                start=start,
                end=end,
                out=str(work / "ours"),
                tile_size_px=tile_size,
                resolution=resolution,
                options=options,
            )  # fmt: skip
        )
        results["(d) stackstac.stack().to_zarr()"] = _timed(
            lambda: _stackstac(per_tile, tiles, work / "ss")
        )
        results["(e) odc.stac.load().to_zarr()"] = _timed(
            lambda: _odc(per_tile, tiles, work / "odc")
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"archive {archive}  tiles {len(tiles)} x {tile_size}px  items {n_layers // len(BENCH_ASSETS)}  "
          f"assets/item {len(BENCH_ASSETS)}  volume {mpx:.1f} Mpx")  # fmt: skip
    print(f"{'method':38s} {'seconds':>8s} {'Mpx/s':>8s} {'peak MiB':>9s}")
    for name, (sec, mem) in results.items():
        print(f"{name:38s} {sec:8.2f} {mpx / sec:8.1f} {mem:9.0f}")
    floor = results["(a) decode floor: rasterio reads"][0] + results["(b) zarr write floor"][0]
    ours = results["(c) geoproc cube build"][0]
    print(f"ours / combined floor (decode+write) throughput: {floor / ours:.2f}  (target >= 0.8)")
    print(
        f"ours / stackstac throughput: {results['(d) stackstac.stack().to_zarr()'][0] / ours:.2f}  (target >= 1)"
    )
    print(
        f"ours / odc-stac throughput:  {results['(e) odc.stac.load().to_zarr()'][0] / ours:.2f}  (target >= 1)"
    )
    speed = results["(d) stackstac.stack().to_zarr()"][0] / ours
    print(f"bench cube: geoproc/stackstac speed {speed:.2f}, geoproc/floor {floor / ours:.2f}")
    return 0


def _timed(fn) -> tuple[float, float]:
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
    return seconds, mem.mib


def _decode_floor(per_tile, tiles) -> None:
    """Read the window of every needed asset that covers each tile (no warping, no writing)."""
    import rasterio
    from rasterio.windows import from_bounds

    from geoproc.cube.assemble import _locate

    for tile in tiles:
        for item in per_tile[tile.id]:
            for key in BENCH_ASSETS:
                href = _locate(item, key)[0]
                with rasterio.open(href) as src:
                    win = (
                        from_bounds(*tile.bounds, transform=src.transform)
                        .round_offsets()
                        .round_lengths()
                    )
                    src.read(1, window=win, boundless=True)


def _write_floor(tiles, n_layers: int, path: Path) -> None:
    """Write the same number of int16 tile layers to one Zarr v3 array with our chunking."""
    import zarr

    from geoproc.cube.store import CHUNK_YX

    size = tiles[0].tile_size_px
    rng = np.random.default_rng(0)
    layer = rng.integers(0, 10000, (size, size)).astype(np.int16)
    chunk = min(CHUNK_YX, size)
    arr = zarr.create_array(
        str(path),
        shape=(n_layers, size, size),
        dtype="int16",
        chunks=(1, chunk, chunk),
        fill_value=-32768,
    )
    for i in range(n_layers):
        arr[i] = layer


def _pystac_items(items):
    import pystac

    return [pystac.Item.from_dict(i) for i in items]


def _stackstac(per_tile, tiles, path: Path) -> None:
    import stackstac

    for tile in tiles:
        arr = stackstac.stack(
            _pystac_items(per_tile[tile.id]), assets=list(BENCH_ASSETS), epsg=tile.epsg,
            resolution=tile.resolution, bounds=tile.bounds, chunksize=(1, 1, 512, 512),
            dtype="int16", fill_value=np.int16(-9999), rescale=False,
        )  # fmt: skip
        ds = arr.reset_coords(drop=True).to_dataset(dim="band")
        ds.attrs = {}  # stackstac puts a CRS object here, which Zarr cannot store
        ds.to_zarr(str(path / f"{tile.id}.zarr"), mode="w", zarr_format=3, consolidated=True)


def _odc(per_tile, tiles, path: Path) -> None:
    import odc.stac
    from odc.geo.geobox import GeoBox

    for tile in tiles:
        gbox = GeoBox.from_bbox(tile.bounds, crs=f"EPSG:{tile.epsg}", resolution=tile.resolution)
        ds = odc.stac.load(
            _pystac_items(per_tile[tile.id]), bands=list(BENCH_ASSETS), geobox=gbox,
            chunks={"time": 1, "y": 512, "x": 512}, groupby="id",
        )  # fmt: skip
        ds.to_zarr(str(path / f"{tile.id}.zarr"), mode="w", zarr_format=3, consolidated=True)
