"""Train the shipped canopy weights on the sample archive and score them on the held-out zone.

Why: the issue asks for weights trained on the sample archive with a card that says so,
and for figures on a tile the model never saw. Training uses every granule of one UTM zone
(32 by default), scoring every granule of the other zone (33), with the truth rasters
`DIR/truth/canopy_class/{granule}.tif` and `canopy_cover/{granule}.tif` on the granule
grids. The rule baseline is scored on the same pixels. Scores: `canopy_score.score`.

Run: ``python -m geoproc.products.canopy.sample_training ARCHIVE_DIR OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import canopy
from geoproc.products.canopy.score import score
from geoproc.products.canopy.train import granule_series, train


def granules_by_zone(archive_dir: str | Path) -> dict[str, list[str]]:
    """Granule ids with canopy truth, grouped by UTM zone (the two digits after `T`)."""
    truth = Path(archive_dir) / "truth" / "canopy_class"
    granules = sorted(p.stem for p in truth.glob("*.tif"))
    if not granules:
        raise UsageError(f"no canopy truth under {truth}: pass a sample archive directory")
    zones: dict[str, list[str]] = {}
    for granule in granules:
        zones.setdefault(granule.lstrip("T")[:2], []).append(granule)
    return zones


def train_and_score(
    archive_dir: str | Path,
    out_dir: str | Path,
    *,
    train_zone: str = "32",
    epochs: int = 15,
    seed: int = 0,
    version: str = "1.0.0",
) -> dict:
    """Train on ``train_zone``, score model and rules on the other zone; returns the figures."""
    root = Path(archive_dir)
    zones = granules_by_zone(root)
    if train_zone not in zones or len(zones) < 2:
        raise UsageError(
            f"the archive has zones {sorted(zones)}: pass a train_zone that is one of them, "
            "with at least one other zone to score on"
        )
    train_granules = zones[train_zone]
    test_granules = [g for z, gs in zones.items() if z != train_zone for g in gs]
    started = time.perf_counter()
    series = [granule_series(root, g) for g in train_granules]
    labels = [_truth(root, "canopy_class", g) for g in train_granules]
    covers = [_truth(root, "canopy_cover", g) for g in train_granules]
    result = train(
        series,
        labels,
        out_dir,
        cover=covers,
        epochs=epochs,
        seed=seed,
        version=version,
        description=(
            "Tree canopy type (no tree / broadleaf / conifer) and cover from 12 monthly HLS "
            "composites. Trained on the geoproc SYNTHETIC sample archive (seed 0, size small, "
            f"granules {', '.join(train_granules)} in UTM zone {train_zone}, calendar 2024), "
            "with augmentations for sparse input, hemisphere and evergreen broadleaf; not "
            "trained on real scenes."
        ),
    )
    train_seconds = time.perf_counter() - started
    figures: dict = {
        "train_granules": train_granules,
        "test_granules": test_granules,
        "train_pixels": result.n_pixels,
        "train_seconds": round(train_seconds, 1),
        "losses": [round(v, 4) for v in result.losses],
    }
    for method in ("model", "rules"):
        predicted, truth, probabilities, cover_err = [], [], [], []
        for granule in test_granules:
            out = canopy.run(
                granule_series(root, granule),
                method=method,
                weights=str(out_dir) if method == "model" else None,
                all_probabilities=True,
            ).isel(year=0)
            reference = _truth(root, "canopy_class", granule).values
            predicted.append(out["canopy_class"].values.ravel())
            truth.append(reference.ravel())
            probabilities.append(out["canopy_class_probability"].values.reshape(3, -1))
            ref_cover = _truth(root, "canopy_cover", granule).values.astype("float64").ravel()
            got_cover = out["canopy_cover"].values.astype("float64").ravel()
            ok = (got_cover != 255) & (ref_cover >= 0) & (ref_cover <= 100)
            cover_err.append(np.abs(got_cover[ok] - ref_cover[ok]))
        figures[method] = score(
            np.concatenate(predicted),
            np.concatenate(truth),
            probabilities=np.concatenate(probabilities, axis=1),
        )
        figures[method]["cover_mae_percent"] = float(np.concatenate(cover_err).mean())
    record_evaluation(result.card_path, figures)
    return figures


def record_evaluation(card_path: str | Path, figures: dict) -> None:
    """Write the held-out scores into the card (the weights and their sha256 are unchanged)."""
    from geoproc.products.canopy.model import write_card

    path = Path(card_path)
    card = json.loads(path.read_text())
    summary = {
        "archive": "geoproc sample archive, seed 0, size small (synthetic)",
        "train_granules": figures["train_granules"],
        "test_granules": figures["test_granules"],
    }
    for method in ("model", "rules"):
        f = figures[method]
        summary[method] = {
            "overall_accuracy": round(f["overall_accuracy"], 4),
            "f1": {k: round(v["f1"], 4) for k, v in f["per_class"].items()},
            "roc_auc": {k: round(v["roc_auc"], 4) for k, v in f["per_class"].items()},
            "cover_mae_percent": round(f["cover_mae_percent"], 2),
            "n_scored": f["n_scored"],
        }
    card["properties"]["geoproc:evaluation"] = summary
    write_card(card, path)


def _truth(root: Path, kind: str, granule: str) -> xr.DataArray:
    import rioxarray

    return rioxarray.open_rasterio(root / "truth" / kind / f"{granule}.tif").squeeze(
        "band", drop=True
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1])
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    figures = train_and_score(args[0], args[1])
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
