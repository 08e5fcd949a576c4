"""Score the products of a run against the sample archive's ground truth.

Truth rasters lie on the generator's granule grids (same UTM zone, 30 m lattice as the
processing tiles), so each truth layer is mosaicked onto the product tile grid with
nearest-neighbour warping (an exact copy on aligned grids; first granule wins where they
overlap) and compared pixel by pixel with the scorers of each product (`flood_score`,
`lst_score`, `canopy_score`). Scores are pooled over tiles from confusion counts and
squared errors, never averaged per tile.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject

from geoproc import storage
from geoproc.dev.sample.clouds import CLEAR as CLOUD_TRUTH_CLEAR
from geoproc.dev.sample.clouds import TRUTH_NODATA as CLOUD_TRUTH_NODATA
from geoproc.errors import NoDataError, UsageError
from geoproc.product_registry import PRODUCT_NAMES
from geoproc.products.canopy import score as canopy_score
from geoproc.products.flood import score as flood_score
from geoproc.products.lst import score as lst_score

_NODATA_U8 = 255


def _tile_grid(ds: xr.Dataset) -> tuple[Affine, tuple[int, int], object]:
    x, y = ds["x"].values, ds["y"].values
    res_x, res_y = float(x[1] - x[0]), float(y[1] - y[0])
    transform = Affine(res_x, 0, x[0] - res_x / 2, 0, res_y, y[0] - res_y / 2)
    return transform, (len(y), len(x)), ds.rio.crs


def _mosaic(paths: list[Path], ds: xr.Dataset, *, dtype: str, nodata: float) -> np.ndarray | None:
    """Truth rasters warped (nearest) onto the tile grid; first valid wins."""
    transform, shape, crs = _tile_grid(ds)
    out = np.full(shape, nodata, dtype=dtype)
    hit = False
    for path in paths:
        with rasterio.open(path) as src:
            if src.crs != crs:
                continue
            dst = np.full(shape, nodata, dtype=dtype)
            reproject(
                rasterio.band(src, 1), dst, dst_transform=transform, dst_crs=crs,
                dst_nodata=nodata, src_nodata=src.nodata if src.nodata is not None else nodata,
                resampling=Resampling.nearest,
            )  # fmt: skip
        empty = np.isnan(out) if np.isnan(nodata) else out == nodata
        valid = ~np.isnan(dst) if np.isnan(nodata) else dst != nodata
        out[empty & valid] = dst[empty & valid]
        hit = hit or bool(valid.any())
    return out if hit else None


def _stores(out: storage.Location, product: str) -> list[tuple[str, xr.Dataset]]:
    fs, root = storage.filesystem(out.join("products", product))
    if not fs.exists(root):
        return []
    found = []
    for path in sorted(fs.ls(root, detail=False)):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".zarr"):
            loc = out.join("products", product, name)
            ds = xr.open_zarr(storage.zarr_store(loc, read_only=True), consolidated=True)
            found.append((name.removesuffix(".zarr"), ds))
    return found


def _granules(truth: Path, epsg: int) -> list[str]:
    index = json.loads((truth / "index.json").read_text())
    return sorted(g for g, meta in index["granules"].items() if int(meta["epsg"]) == epsg)


def _day(t) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d")


def evaluate_flood(out: storage.Location, truth: Path) -> dict:
    per_date: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((2, 3), np.int64))
    totals = np.zeros((2, 3), np.int64)
    for _tile, ds in _stores(out, "flood"):
        granules = _granules(truth, ds.rio.crs.to_epsg())
        water = ds["water"]
        for i, t in enumerate(ds["time"].values):
            day = _day(t)
            layer = _mosaic([truth / "flood" / g / f"{day}.tif" for g in granules
                             if (truth / "flood" / g / f"{day}.tif").exists()], ds, dtype="uint8", nodata=_NODATA_U8)  # fmt: skip
            if layer is None:
                continue
            s = flood_score.score(water.isel(time=[i]), {day: layer})["overall"]
            counts = np.array([[s[k]["tp"], s[k]["fp"], s[k]["fn"]] for k in ("water", "flood")])
            per_date[day] += counts
            totals += counts
    if not totals.any():
        raise NoDataError(
            f"No flood product overlaps the truth in {truth}: run the flood product first."
        )

    def summary(c: np.ndarray) -> dict:
        res = {}
        for row, name in enumerate(("water", "flood")):
            tp, fp, fn = (int(v) for v in c[row])
            res[name] = {
                "iou": tp / (tp + fp + fn) if tp + fp + fn else float("nan"),
                "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
            }
        return res

    return {
        "overall": summary(totals),
        "per_date": {d: summary(c) for d, c in sorted(per_date.items())},
    }


def evaluate_lst(out: storage.Location, truth: Path) -> dict:
    """RMSE/bias over every pixel the product gave a value, plus coverage of the truly clear.

    Coverage (pixels clear in the cloud truth that got an LST, over all such pixels) keeps
    a cloud screen honest: dropping pixels lowers RMSE only if it does not cost coverage.
    """
    sq, err, n = 0.0, 0.0, 0
    clear_sq, clear_n, clear_total = 0.0, 0, 0
    per_date = {}
    for _tile, ds in _stores(out, "lst"):
        sources = ds.attrs.get("geoproc:source_items", [])
        for i, t in enumerate(ds["time"].values):
            ids = sources[i] if i < len(sources) else []
            layer = _mosaic(_truth_paths(truth, "lst", ids), ds, dtype="float32", nodata=np.nan)
            if layer is None:
                continue
            pred = ds["lst"].isel(time=i).values
            s = lst_score.score(pred, layer)
            if s["n"]:
                sq += s["rmse"] ** 2 * s["n"]
                err += s["bias"] * s["n"]
                n += s["n"]
                per_date[_day(t)] = s
            clouds = _mosaic(
                _truth_paths(truth, "clouds", ids), ds, dtype="uint8", nodata=CLOUD_TRUTH_NODATA
            )
            if clouds is not None:
                truly_clear = (clouds == CLOUD_TRUTH_CLEAR) & np.isfinite(layer)
                got = truly_clear & np.isfinite(pred)
                clear_total += int(truly_clear.sum())
                clear_n += int(got.sum())
                clear_sq += float(np.sum((pred[got] - layer[got]) ** 2))
    if not n:
        raise NoDataError(
            f"No LST product overlaps the truth in {truth}: run the lst product first."
        )
    overall = {"rmse": float(np.sqrt(sq / n)), "bias": float(err / n), "n": n}
    if clear_total:
        overall["truly_clear_coverage"] = clear_n / clear_total
        overall["truly_clear_rmse"] = float(np.sqrt(clear_sq / clear_n)) if clear_n else None
    return {"overall": overall, "per_date": per_date}


def _truth_paths(truth: Path, layer: str, item_ids: list[str]) -> list[Path]:
    paths = (truth / layer / f"{item}.tif" for item in item_ids)
    return [p for p in paths if p.exists()]


def evaluate_canopy(
    out: storage.Location, truth: Path, *, held_out_zones: tuple[int, ...] = ()
) -> dict:
    groups: dict[str, list] = defaultdict(lambda: [[], [], []])
    for tile, ds in _stores(out, "canopy"):
        epsg = ds.rio.crs.to_epsg()
        layer = _mosaic(
            [truth / "canopy_class" / f"{g}.tif" for g in _granules(truth, epsg)],
            ds,
            dtype="uint8",
            nodata=_NODATA_U8,
        )
        if layer is None:
            continue
        zone = epsg % 100
        group = "held_out" if zone in held_out_zones else "all"
        pred = ds["canopy_class"].isel(year=-1).values
        probs = (
            ds["canopy_class_probability"].isel(year=-1).values
            if "canopy_class_probability" in ds
            else None
        )
        for key in {group, "all"}:
            groups[key][0].append(pred.ravel())
            groups[key][1].append(layer.ravel())
            if probs is not None:
                groups[key][2].append(probs.reshape(probs.shape[0], -1))
        _ = tile
    if not groups:
        raise NoDataError(
            f"No canopy product overlaps the truth in {truth}: run the canopy product first."
        )
    result = {}
    for key, (p, t, pr) in groups.items():
        probs = np.concatenate(pr, axis=1) if pr and len(pr) == len(p) else None
        result[key] = canopy_score.score(np.concatenate(p), np.concatenate(t), probabilities=probs)
    return result


def evaluate(out: str, archive: str | Path, *, products: tuple[str, ...] = PRODUCT_NAMES) -> dict:
    """Scoreboard of every product present under `out` against `archive/truth`."""
    truth = Path(archive) / "truth"
    if not (truth / "index.json").is_file():
        raise UsageError(
            f"{archive} has no truth/index.json: pass --archive, the folder of `geoproc sample create`."
        )
    loc = storage.parse_url(out)
    board: dict = {}
    if "flood" in products:
        board["flood"] = evaluate_flood(loc, truth)
    if "lst" in products:
        board["lst"] = evaluate_lst(loc, truth)
    if "canopy" in products:
        board["canopy"] = evaluate_canopy(loc, truth, held_out_zones=_held_out_zones())
    return board


def _held_out_zones() -> tuple[int, ...]:
    """UTM zones the shipped canopy weights were not trained on (read from their card)."""
    card = Path(__file__).parent / "products" / "canopy" / "weights" / "canopy_temporal.json"
    try:
        doc = json.loads(card.read_text())
    except (OSError, ValueError):
        return ()
    text = json.dumps(doc)
    granules: list[str] = []
    for key in ("train_granules",):
        idx = text.find(f'"{key}"')
        if idx >= 0:
            chunk = text[idx : text.find("]", idx)]
            granules = [g.strip(' "') for g in chunk.split("[", 1)[-1].split(",") if g.strip(' "')]
    trained = {int(g[:2]) for g in granules if g[:2].isdigit()}
    return tuple(z for z in (32, 33) if trained and z not in trained)


def format_scoreboard(board: dict) -> str:
    """A plain-text scoreboard for the terminal and the README."""
    lines = ["product  metric                      value"]
    if "flood" in board:
        o = board["flood"]["overall"]
        lines += [
            f"flood    water IoU / F1 (all dates)   {o['water']['iou']:.3f} / {o['water']['f1']:.3f}",
            f"flood    flood IoU / F1 (all dates)   {o['flood']['iou']:.3f} / {o['flood']['f1']:.3f}",
        ]
        flood_dates = {
            d: s
            for d, s in board["flood"]["per_date"].items()
            if np.isfinite(s["flood"]["iou"]) and s["flood"]["iou"] > 0
        }
        if flood_dates:
            worst = min(flood_dates.items(), key=lambda kv: kv[1]["flood"]["iou"])
            lines.append(
                f"flood    dates with flood water       {len(flood_dates)} (lowest flood IoU {worst[1]['flood']['iou']:.3f} on {worst[0]})"
            )
    if "lst" in board:
        o = board["lst"]["overall"]
        lines.append(
            f"lst      RMSE / bias (K)              {o['rmse']:.3f} / {o['bias']:+.3f}  (n={o['n']})"
        )
        if o.get("truly_clear_coverage") is not None:
            rmse = o.get("truly_clear_rmse")
            lines.append(
                f"lst      truly clear: coverage {o['truly_clear_coverage']:.4f}, RMSE {rmse:.3f} K"
                if rmse is not None
                else "lst      truly clear: no value"
            )
    if "canopy" in board:
        for group, s in board["canopy"].items():
            f1 = " / ".join(f"{s['per_class'][c]['f1']:.3f}" for c in canopy_score.CLASS_NAMES)
            auc = s.get("macro_roc_auc")
            lines.append(
                f"canopy   [{group}] OA {s['overall_accuracy']:.3f}  F1 none/broadleaf/conifer {f1}"
                + (f"  ROC-AUC {auc:.3f}" if auc is not None else "")
            )
    return "\n".join(lines)
