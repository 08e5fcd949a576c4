"""Train the canopy temporal network from a reflectance series and a label raster.

Method: supervised training of `CanopyTemporalNet` (see `canopy_model`) on the monthly
composites of every labelled pixel, with class-balanced cross-entropy for the tree type
and a masked L1 loss for canopy cover, Adam, fixed seeds. Augmentations make a model
trained on one region hold elsewhere, following the physics rather than the training
scene: (1) random removal of observed months down to three "seasonal composites" (sparse
input must still work, Pelletier et al. 2019 use similar temporal dropout), (2) a random
stretch of the cycle around its peak (season length varies with climate, so it must not
decide the class on its own), (3) a random circular shift of the annual cycle
(hemispheres and tropics; the network is shift-invariant by design, this keeps the
gap-filling pattern varied), (4) multiplicative brightness jitter, whole-spectrum and per
band (sensor and illumination differences, HLS harmonisation residuals, Claverie et al.
2018, Remote Sens. Environ. 219:145), conifers darkened by up to 30% (measured needle-leaf
NIR is ~0.15-0.25, darker than the sample archive's conifers), and (5) "evergreen broadleaf" copies of broadleaf
pixels whose whole cycle is replaced by its greenest month (darkened up to 20%), labelled
broadleaf, so that evergreen habit alone is never read as conifer (tropical and eucalypt
forests; Copernicus HRL Dominant Leaf Type logic).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from geoproc.errors import UsageError
from geoproc.products.canopy.composites import CANOPY_BANDS, N_MONTHS
from geoproc.products.canopy.model import (
    CLASS_NAMES,
    FEATURES,
    CanopyTemporalNet,
    best_device,
    save_model,
)

IGNORE_LABEL = 255
_LOG = logging.getLogger(__name__)
_OBSERVED = FEATURES.index("observed")
_NIR, _RED, _SWIR = (CANOPY_BANDS.index(b) for b in ("nir08", "red", "swir16"))


@dataclass(frozen=True)
class TrainResult:
    """What training produced."""

    card_path: Path
    """The JSON card written next to the safetensors weights."""
    losses: list[float]
    """Mean training loss per epoch."""
    n_pixels: int
    """Labelled pixels used."""


def train(
    dataset: xr.Dataset | Sequence[xr.Dataset],
    labels: xr.DataArray | str | Path | Sequence[xr.DataArray | str | Path],
    out_dir: str | Path,
    *,
    cover: xr.DataArray | str | Path | Sequence[xr.DataArray | str | Path] | None = None,
    epochs: int = 30,
    batch_size: int = 512,
    learning_rate: float = 3e-3,
    hidden: int = 32,
    dropout: float = 0.2,
    max_pixels: int | None = 200_000,
    augment: bool = True,
    seed: int = 0,
    version: str = "0.1.0",
    description: str = "",
    hemisphere: str | None = None,
    latitude: float | None = None,
    device: str | None = None,
) -> TrainResult:
    """Train on ``dataset`` (time, y, x bands) against ``labels`` (y, x: 0/1/2, 255 ignored;
    a DataArray or a GeoTIFF path on the same UTM grid) and write weights + card to ``out_dir``.

    Several tiles: pass lists of datasets, labels (and covers), one per tile.
    """
    from geoproc.products.canopy import composites_for
    from geoproc.products.canopy.model import model_features

    datasets = [dataset] if isinstance(dataset, xr.Dataset) else list(dataset)
    label_list = labels if isinstance(labels, list | tuple) else [labels]
    cover_list = cover if isinstance(cover, list | tuple) else [cover] * len(datasets)
    if not (len(datasets) == len(label_list) == len(cover_list)):
        raise UsageError(
            f"train got {len(datasets)} datasets, {len(label_list)} label rasters and "
            f"{len(cover_list)} cover rasters: pass one of each per tile"
        )
    xs, ys, cs, usable_parts = [], [], [], []
    for ds, lab, cov in zip(datasets, label_list, cover_list, strict=True):
        composites, _ = composites_for(ds, hemisphere=hemisphere, latitude=latitude)
        xs.append(model_features(composites))
        ys.append(_aligned_raster(lab, ds, name="labels").reshape(-1))
        cs.append(
            _aligned_raster(cov, ds, name="cover").reshape(-1).astype("float32")
            if cov is not None
            else np.full(ys[-1].size, np.nan, dtype="float32")
        )
        usable_parts.append(composites.observed.any(axis=0) & np.isin(ys[-1], (0, 1, 2)))
    x_all, y_all, c_all = np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)
    usable = np.concatenate(usable_parts)
    rng = np.random.default_rng(seed)
    index = np.flatnonzero(usable)
    if index.size == 0:
        raise UsageError(
            "no pixel has both a label in 0/1/2 and clear data: check that `labels` lies on "
            "the dataset's grid and that the series is not fully masked"
        )
    if max_pixels is not None and index.size > max_pixels:
        index = rng.choice(index, size=max_pixels, replace=False)
    x = x_all[index]
    y = y_all[index].astype("int64")
    c = c_all[index] / 100.0
    c = np.where((c >= 0) & (c <= 1), c, np.nan).astype("float32")
    torch.manual_seed(seed)
    run_device = best_device(device)
    model = CanopyTemporalNet(n_features=len(FEATURES), hidden=hidden, dropout=dropout)
    model.to(run_device)
    counts = np.bincount(y, minlength=len(CLASS_NAMES)).astype("float64")
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(CLASS_NAMES), 0.0)
    class_loss = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32).to(run_device)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    losses: list[float] = []
    batch_size = min(batch_size, max(32, index.size // 16))  # >= ~16 steps per epoch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: one thread is fastest and robust on a busy machine
    try:
        for epoch in range(epochs):
            model.train()
            xb_all, yb_all, cb_all = _augment(x, y, c, rng) if augment else (x, y, c)
            order = rng.permutation(len(yb_all))
            total, seen = 0.0, 0
            for start in range(0, len(order), batch_size):
                pick = order[start : start + batch_size]
                if len(pick) < 2:
                    continue
                xb = torch.from_numpy(xb_all[pick]).to(run_device)
                yb = torch.from_numpy(yb_all[pick]).to(run_device)
                cb = torch.from_numpy(cb_all[pick]).to(run_device)
                logits, fraction = model(xb)
                loss = class_loss(logits, yb)
                known = torch.isfinite(cb)
                if bool(known.any()):
                    loss = loss + (fraction[known] - cb[known]).abs().mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(pick)
                seen += len(pick)
            scheduler.step()
            losses.append(total / max(seen, 1))
            _LOG.info("canopy training epoch %d/%d: loss %.4f", epoch + 1, epochs, losses[-1])
    finally:
        torch.set_num_threads(threads)
    model.eval()
    training = {
        "epochs": epochs,
        "pixels": int(index.size),
        "class_counts": counts.astype(int).tolist(),
        "augment": augment,
        "seed": seed,
        "final_loss": losses[-1] if losses else None,
    }
    card_path = save_model(
        model.cpu(),
        out_dir,
        version=version,
        description={"text": description or "Tree canopy type and cover", "training": training},
    )
    return TrainResult(card_path=card_path, losses=losses, n_pixels=int(index.size))


def _augment(
    x: np.ndarray, y: np.ndarray, c: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's augmented copy of the training set (see the module docstring)."""
    x = x.copy()
    n = len(y)
    # (1) sparse input: a third of the samples keep only 3 of their observed months
    sparse = np.flatnonzero(rng.random(n) < 0.33)
    if sparse.size:
        observed = x[sparse, :, _OBSERVED] > 0.5  # (samples, 12)
        priority = np.where(observed, rng.random(observed.shape), -1.0)
        third = -np.sort(-priority, axis=1)[:, 2:3]  # third-highest random key per sample
        keep = observed & (priority >= third) & (observed.sum(axis=1, keepdims=True) > 3)
        keep |= observed & (observed.sum(axis=1, keepdims=True) <= 3)
        x[sparse] = _refill(x[sparse], keep)
    # (2) season length varies with climate: stretch or squeeze the cycle around its peak
    x = _time_warp(x, rng.uniform(0.6, 1.5, size=n))
    # (3) circular shift of the cycle
    shifts = rng.integers(0, N_MONTHS, size=n)
    rows = (np.arange(N_MONTHS)[None, :] - shifts[:, None]) % N_MONTHS
    x = np.take_along_axis(x, rows[:, :, None], axis=1)
    # (4) brightness jitter, whole spectrum and per band (sensors, illumination, canopies)
    gain = rng.normal(1.0, 0.06, size=(n, 1, 1)) * rng.normal(1.0, 0.04, size=(n, 1, 6))
    x[:, :, : len(CANOPY_BANDS)] *= gain.astype("float32")
    # conifers of the sample archive are brighter than measured needle-leaf canopies
    # (NIR ~0.15-0.25): darken them into that range so darker real conifers stay conifer
    conifer = y == 2
    x[conifer, :, : len(CANOPY_BANDS)] *= rng.uniform(0.7, 1.0, size=(int(conifer.sum()), 1, 1))
    x = _recompute_indices(x)
    # (5) evergreen broadleaf copies (tropical evergreen canopies are somewhat darker)
    broadleaf = np.flatnonzero(y == 1)
    if broadleaf.size:
        pick = rng.choice(broadleaf, size=max(1, broadleaf.size // 4), replace=True)
        peak = np.argmax(x[pick, :, FEATURES.index("ndvi")], axis=1)
        evergreen = np.repeat(x[pick, peak][:, None, :], N_MONTHS, axis=1)
        evergreen[:, :, : len(CANOPY_BANDS)] *= (
            rng.uniform(0.8, 1.05, size=(len(pick), 1, 1))
            * rng.normal(1.0, 0.03, size=(len(pick), N_MONTHS, 1))
        ).astype("float32")
        evergreen = _recompute_indices(evergreen)
        x = np.concatenate([x, evergreen])
        y = np.concatenate([y, y[pick]])
        c = np.concatenate([c, c[pick]])
    return np.ascontiguousarray(x, dtype="float32"), y, c


def _time_warp(x: np.ndarray, stretch: np.ndarray) -> np.ndarray:
    """Stretch (>1) or squeeze (<1) each sample's annual cycle around its NDVI peak month,
    circularly, so that season length alone cannot decide the class."""
    n = x.shape[0]
    peak = np.argmax(x[:, :, FEATURES.index("ndvi")], axis=1)
    months = np.arange(N_MONTHS)[None, :]
    offset = (months - peak[:, None] + N_MONTHS // 2) % N_MONTHS - N_MONTHS // 2
    source = np.mod(peak[:, None] + offset / stretch[:, None], N_MONTHS)  # (n, 12) fractional
    low = np.floor(source).astype("int64")
    high = (low + 1) % N_MONTHS
    weight = (source - low)[:, :, None].astype("float32")
    rows = np.arange(n)[:, None]
    warped = (1 - weight) * x[rows, low] + weight * x[rows, high]
    warped[:, :, _OBSERVED] = np.where(
        weight[:, :, 0] < 0.5, x[rows, low, _OBSERVED], x[rows, high, _OBSERVED]
    )
    return _recompute_indices(np.ascontiguousarray(warped, dtype="float32"))


def _refill(samples: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Keep only the months in ``keep`` (samples, 12) as observed; re-interpolate the rest
    circularly, exactly as the composite builder does."""
    from geoproc.products.canopy.composites import _fill_circular

    n_bands = len(CANOPY_BANDS)
    values = samples[:, :, :n_bands].transpose(1, 2, 0).copy()  # (12, bands, samples)
    values[~keep.T[:, None, :].repeat(n_bands, axis=1)] = np.nan
    out = samples.copy()
    out[:, :, :n_bands] = _fill_circular(values, keep.T).transpose(2, 0, 1)
    out[:, :, _OBSERVED] = keep.astype("float32")
    return _recompute_indices(out)


def _recompute_indices(x: np.ndarray) -> np.ndarray:
    nir, red, swir = x[..., _NIR], x[..., _RED], x[..., _SWIR]
    x[..., FEATURES.index("ndvi")] = np.clip((nir - red) / np.maximum(nir + red, 1e-4), -1, 1)
    x[..., FEATURES.index("ndmi")] = np.clip((nir - swir) / np.maximum(nir + swir, 1e-4), -1, 1)
    return x


def _aligned_raster(
    source: xr.DataArray | str | Path, dataset: xr.Dataset, *, name: str
) -> np.ndarray:
    """A (y, x) raster on the dataset grid, picked by coordinate (labels may be larger)."""
    if isinstance(source, str | Path):
        import rioxarray

        source = rioxarray.open_rasterio(source, masked=False).squeeze("band", drop=True)
    if not isinstance(source, xr.DataArray) or set(source.dims) != {"y", "x"}:
        raise UsageError(f"`{name}` must be a (y, x) DataArray or a GeoTIFF path")
    try:
        picked = source.sel(y=dataset["y"], x=dataset["x"], method="nearest", tolerance=1.0)
    except KeyError as error:
        raise UsageError(
            f"`{name}` does not cover the dataset grid (pixel centres must match within 1 m): "
            "pass a raster on the same UTM grid, or crop the dataset to the labelled area"
        ) from error
    return np.asarray(picked.transpose("y", "x").values)


def granule_series(archive_dir: str | Path, granule: str) -> xr.Dataset:
    """The masked HLS (L30 + S30) series of one granule of a local HLS-layout archive, as a
    (time, y, x) Dataset of the six canopy bands on the granule grid.

    Why here: the shipped weights are trained where the sample archive's truth rasters lie
    (granule grids), reading the COGs directly with the band table of `geoproc.catalog.sensors`;
    Fmask cloud, adjacent cloud, shadow and snow/ice bits and fill values become NaN.
    """
    import json

    import rasterio

    from geoproc.catalog.sensors import FMASK_BITS, profile_for

    root = Path(archive_dir)
    masked_bits = sum(
        1 << FMASK_BITS[b] for b in ("cloud", "adjacent_cloud", "cloud_shadow", "snow_ice")
    )
    steps: list[tuple[np.datetime64, np.ndarray]] = []
    grid = None
    for collection in ("HLSL30_2.0", "HLSS30_2.0"):
        profile = profile_for(collection)
        assets = {profile.band(b).asset: b for b in CANOPY_BANDS}
        tile = granule if granule.startswith("T") else f"T{granule}"
        for item_path in sorted((root / "items" / collection).glob(f"*.{tile}.*.json")):
            item = json.loads(item_path.read_text())
            when = np.datetime64(item["properties"]["datetime"].rstrip("Z"), "ns")

            def href(asset: str, item=item, item_path=item_path) -> Path:
                return (item_path.parent / item["assets"][asset]["href"]).resolve()

            with rasterio.open(href(profile.qa.asset)) as src:
                fmask = src.read(1)
                if grid is None:
                    grid = (src.transform, src.width, src.height, src.crs)
            bad = (fmask == profile.qa.nodata) | ((fmask & masked_bits) != 0)
            bands = np.empty((len(CANOPY_BANDS),) + fmask.shape, dtype="float32")
            for asset, name in assets.items():
                band = profile.band(name)
                with rasterio.open(href(asset)) as src:
                    dn = src.read(1)
                value = dn.astype("float32") * band.scale + band.offset
                value[(dn == band.nodata) | bad] = np.nan
                bands[CANOPY_BANDS.index(name)] = value
            steps.append((when, bands))
    if not steps or grid is None:
        raise UsageError(
            f"no HLS items for granule {granule!r} under {root}/items: pass a granule id "
            "that the archive holds (e.g. the names of DIR/truth/canopy_class/*.tif)"
        )
    steps.sort(key=lambda s: s[0])
    transform, width, height, crs = grid
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    data = np.stack([s[1] for s in steps])
    ds = xr.Dataset(
        {b: (("time", "y", "x"), data[:, i]) for i, b in enumerate(CANOPY_BANDS)},
        coords={"time": np.array([s[0] for s in steps]), "y": ys, "x": xs},
    )
    import rioxarray  # noqa: F401

    return ds.rio.write_crs(crs.to_wkt())
