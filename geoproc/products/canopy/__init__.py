"""Tree canopy product: leaf type (none / broadleaf / conifer), canopy cover and evidence QA per year.

Method: per pixel and calendar year, the masked HLS series (blue, green, red, nir08,
swir16, swir22) is reduced to twelve season-aligned, gap-filled monthly median composites
(day of year shifted by 182 days south of the equator; `canopy_composites`), then either a
small shift-invariant temporal CNN (`canopy_model`, default, after Pelletier et al. 2019
TempCNN and the EarthPT / Dargana HLS leaf-type work) or a phenology + spectral-trait rule
baseline (`canopy_phenology`, after the Copernicus HRL Dominant Leaf Type / Tree Cover
Density logic) gives the class, its probability and the canopy cover. Evergreen is not
conifer: needle-leaf canopies are told apart by their dark NIR/SWIR1, so tropical and
eucalypt evergreen broadleaf forest stays broadleaf.

Outputs, dims ``(year, y, x)`` always (length-1 ``year`` for one year), so stores of one
year and of many look alike:

* ``canopy_class`` uint8: 0 no tree, 1 broadleaf, 2 conifer, 255 no data;
* ``canopy_cover`` uint8 percent 0..100 (255 no data);
* ``canopy_probability`` uint8 percent 0..100: probability of the chosen class (255 no data);
* QA (how much evidence there was): ``canopy_clear_count`` uint16 clear observations,
  ``canopy_months_observed`` uint8 0..12 months with real (not interpolated) data,
  ``canopy_seasons_covered`` uint8 0..4 seasons (hemisphere-aligned DJF/MAM/JJA/SON) with data;
* optional ``canopy_class_probability`` float32 (year, class, y, x) with ``all_probabilities=True``.

A pixel with fewer than ``min_clear`` clear observations (all six bands finite) in a year
is no data in every product variable: a masked input gives nodata, never a guess. Dense
series and a few seasonal composites (e.g. three dates) are both valid input; the QA
variables say which one a pixel had.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products.base import ProductSpec, VariableSpec, apply_output_attrs
from geoproc.products.canopy.composites import (
    CANOPY_BANDS,
    MonthlyComposites,
    monthly_composites,
    pixel_latitude,
    season_shift_days,
)

NODATA = 255
CLASS_MEANINGS = ("no_tree", "broadleaf", "conifer")

SPEC = ProductSpec(
    name="canopy",
    version="1.0.0",
    method=(
        "Season-aligned gap-filled monthly HLS composites -> shift-invariant temporal CNN "
        "(TempCNN, Pelletier et al. 2019) or phenology/spectral-trait rules (Copernicus HRL "
        "Dominant Leaf Type logic); conifer from dark NIR/SWIR1, not from evergreen habit"
    ),
    required_inputs=CANOPY_BANDS,
    temporal="series",
    outputs=(
        VariableSpec(
            name="canopy_class",
            dtype="uint8",
            units="1",
            long_name="dominant tree canopy leaf type",
            fill_value=NODATA,
            flag_values=(0, 1, 2),
            flag_meanings=CLASS_MEANINGS,
        ),
        VariableSpec(
            name="canopy_cover",
            dtype="uint8",
            units="percent",
            long_name="tree canopy cover",
            standard_name="area_fraction",
            fill_value=NODATA,
            valid_range=(0, 100),
        ),
        VariableSpec(
            name="canopy_probability",
            dtype="uint8",
            units="percent",
            long_name="probability of the chosen canopy class",
            fill_value=NODATA,
            valid_range=(0, 100),
        ),
        VariableSpec(
            name="canopy_clear_count",
            dtype="uint16",
            units="1",
            long_name="number of clear observations used in the year",
        ),
        VariableSpec(
            name="canopy_months_observed",
            dtype="uint8",
            units="1",
            long_name="months of the season-aligned year with clear data (not interpolated)",
            valid_range=(0, 12),
        ),
        VariableSpec(
            name="canopy_seasons_covered",
            dtype="uint8",
            units="1",
            long_name="seasons (hemisphere-aligned DJF, MAM, JJA, SON) with clear data",
            valid_range=(0, 4),
        ),
        VariableSpec(
            name="canopy_class_probability",
            dtype="float32",
            units="1",
            long_name="probability of each canopy class (no_tree, broadleaf, conifer)",
            fill_value=float("nan"),
            valid_range=(0.0, 1.0),
        ),
    ),
    halo=0,
)

_SCALAR_OUTPUTS = (
    ("canopy_class", "uint8"),
    ("canopy_cover", "uint8"),
    ("canopy_probability", "uint8"),
    ("canopy_clear_count", "uint16"),
    ("canopy_months_observed", "uint8"),
    ("canopy_seasons_covered", "uint8"),
)


def run(
    dataset: xr.Dataset,
    *,
    method: Literal["model", "rules"] = "model",
    weights: str | None = None,
    hemisphere: Literal["north", "south"] | None = None,
    latitude: float | None = None,
    min_clear: int = 1,
    all_probabilities: bool = False,
    device: str | None = None,
    block_size: int = 256,
) -> xr.Dataset:
    """Canopy type, cover, probability and QA per calendar year of ``dataset``.

    ``method``: `model` (temporal CNN; ``weights`` = a directory with card + safetensors,
    default the shipped weights) or `rules` (phenology baseline). ``hemisphere`` or
    ``latitude`` override the latitude read from ``spatial_ref``. Lazy (dask) input gives
    lazy output; eager input is processed in ``block_size`` pixel blocks.
    """
    series = _validated_series(dataset)
    if method not in ("model", "rules"):
        raise UsageError(f"canopy method {method!r} is unknown: use method='model' or 'rules'")
    if min_clear < 1:
        raise UsageError(f"min_clear must be >= 1 (got {min_clear})")
    model_info: dict = {}
    if method == "model":
        from geoproc.products.canopy.model import load_model

        loaded = load_model(weights, device=device)  # fail early on a bad card / weights
        model_info = {
            "model_name": loaded.card["properties"]["mlm:name"],
            "model_version": loaded.version,
            "model_sha256": loaded.sha256,
        }
    shift = xr.DataArray(
        _shift_days(series, hemisphere=hemisphere, latitude=latitude),
        dims=("y", "x"),
        coords={"y": series["y"], "x": series["x"]},
    )
    stacked = series.to_dataarray("band").transpose("band", "time", "y", "x")
    if stacked.chunks is None:
        stacked = stacked.chunk({"band": -1, "time": -1, "y": block_size, "x": block_size})
        eager = True
    else:
        stacked = stacked.chunk({"band": -1, "time": -1})
        eager = False
    shift = shift.chunk(dict(zip(("y", "x"), stacked.chunks[2:], strict=True)))
    years = np.unique(stacked["time"].dt.year.values)
    per_year = []
    for year in years:
        one_year = stacked.isel(time=np.flatnonzero(stacked["time"].dt.year.values == year))
        per_year.append(
            _run_year(
                one_year,
                shift,
                method=method,
                weights=weights,
                device=device,
                min_clear=min_clear,
                all_probabilities=all_probabilities,
            ).expand_dims(year=[int(year)])
        )
    out = xr.concat(per_year, dim="year") if len(per_year) > 1 else per_year[0]
    out.attrs = {}  # the cube's attributes (title, source items) describe the input, not this product
    for name in out.data_vars:
        out[name].attrs = {}
    if "spatial_ref" in dataset.coords:
        out = out.assign_coords(spatial_ref=dataset.coords["spatial_ref"])
        for name in out.data_vars:
            out[name].attrs["grid_mapping"] = "spatial_ref"
    if eager:
        out = out.compute()
    params = {
        "method": method,
        "hemisphere": hemisphere,
        "latitude": latitude,
        "min_clear": min_clear,
        **model_info,
    }
    out = apply_output_attrs(out, SPEC, params)
    out.attrs.update(model_info)
    out["year"].attrs.update({"long_name": "calendar year of the observations", "units": "1"})
    return out


def composites_for(
    dataset: xr.Dataset,
    *,
    hemisphere: Literal["north", "south"] | None = None,
    latitude: float | None = None,
) -> tuple[MonthlyComposites, tuple[int, int]]:
    """Monthly composites of a whole (time, y, x) dataset in memory, pixels in row-major
    order, with the (y, x) shape: the training path of the product."""
    series = _validated_series(dataset)
    shift = _shift_days(series, hemisphere=hemisphere, latitude=latitude)
    values = np.stack(
        [np.asarray(series[b].transpose("time", "y", "x").values) for b in CANOPY_BANDS], axis=1
    )
    n_time, n_bands, ny, nx = values.shape
    composites = monthly_composites(
        values.reshape(n_time, n_bands, ny * nx),
        series["time"].values,
        shift_days=shift.reshape(-1),
    )
    return composites, (ny, nx)


def _run_year(
    stacked: xr.DataArray,
    shift: xr.DataArray,
    *,
    method: str,
    weights: str | None,
    device: str | None,
    min_clear: int,
    all_probabilities: bool,
) -> xr.Dataset:
    times = stacked["time"].values
    results = xr.apply_ufunc(
        _canopy_block,
        stacked,
        shift,
        input_core_dims=[["band", "time"], []],
        output_core_dims=[[]] * len(_SCALAR_OUTPUTS) + [["class"]],
        dask="parallelized",
        output_dtypes=[dtype for _, dtype in _SCALAR_OUTPUTS] + ["float32"],
        dask_gufunc_kwargs={"output_sizes": {"class": len(CLASS_MEANINGS)}},
        kwargs={
            "times": times,
            "method": method,
            "weights": weights,
            "device": device,
            "min_clear": min_clear,
        },
    )
    out = xr.Dataset(
        {name: da for (name, _), da in zip(_SCALAR_OUTPUTS, results[:-1], strict=True)}
    )
    if all_probabilities:
        out["canopy_class_probability"] = (
            results[-1].transpose("class", "y", "x").assign_coords({"class": list(CLASS_MEANINGS)})
        )
    return out


def _canopy_block(
    block: np.ndarray,
    shift: np.ndarray,
    *,
    times: np.ndarray,
    method: str,
    weights: str | None,
    device: str | None,
    min_clear: int,
) -> tuple[np.ndarray, ...]:
    """Per-pixel product for one (y, x, band, time) block: the numpy kernel of the product."""
    ny, nx, n_bands, n_time = block.shape
    values = np.ascontiguousarray(block.reshape(ny * nx, n_bands, n_time).transpose(2, 1, 0))
    composites = monthly_composites(values, times, shift_days=shift.reshape(-1))
    clear = composites.clear_count
    enough = clear >= min_clear
    if method == "model":
        from geoproc.products.canopy.model import load_model, model_features, predict

        loaded = load_model(weights, device=device)
        probabilities = np.full((len(CLASS_MEANINGS), ny * nx), np.nan, dtype="float32")
        cover = np.full(ny * nx, np.nan, dtype="float32")
        pick = np.flatnonzero(enough)
        if pick.size:
            sub = MonthlyComposites(
                values=composites.values[:, :, pick],
                observed=composites.observed[:, pick],
                clear_count=clear[pick],
            )
            probabilities[:, pick], fraction = predict(loaded, model_features(sub))
            cover[pick] = 100.0 * fraction
    else:
        from geoproc.products.canopy.phenology import classify_rules

        rules = classify_rules(composites)
        probabilities, cover = rules.probabilities, rules.cover
    valid = enough & np.isfinite(probabilities).all(axis=0) & np.isfinite(cover)
    probabilities = np.where(valid, probabilities, np.nan).astype("float32")
    canopy_class = np.where(
        valid, np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=0), NODATA
    )
    chosen = np.take_along_axis(np.nan_to_num(probabilities), canopy_class.clip(0, 2)[None], 0)[0]
    outputs = (
        canopy_class.astype("uint8"),
        np.where(valid, np.rint(np.clip(cover, 0, 100)), NODATA).astype("uint8"),
        np.where(valid, np.rint(100 * chosen), NODATA).astype("uint8"),
        np.minimum(clear, np.iinfo("uint16").max).astype("uint16"),
        composites.months_observed.astype("uint8"),
        composites.seasons_covered.astype("uint8"),
    )
    shaped = tuple(o.reshape(ny, nx) for o in outputs)
    return (*shaped, probabilities.T.reshape(ny, nx, len(CLASS_MEANINGS)))


def _validated_series(dataset: xr.Dataset) -> xr.Dataset:
    """The six bands as a (time, y, x) float Dataset, or a UsageError naming what is wrong."""
    if not isinstance(dataset, xr.Dataset):
        raise UsageError("the canopy product takes an xarray.Dataset of bands by common name")
    missing = [b for b in CANOPY_BANDS if b not in dataset.data_vars]
    if missing:
        raise UsageError(
            f"the canopy product needs bands {', '.join(CANOPY_BANDS)}; missing: "
            f"{', '.join(missing)} (rename to STAC common names, e.g. HLS B8A/B05 -> nir08)"
        )
    series = dataset[list(CANOPY_BANDS)]
    if "time" not in series.dims:
        if "time" in series.coords:
            series = series.expand_dims("time")
        else:
            raise UsageError(
                "the canopy product needs a `time` dimension (or a scalar `time` coordinate "
                "for one composite) with datetime64 values"
            )
    for dim in ("y", "x"):
        if dim not in series.dims:
            raise UsageError(f"the canopy product needs dims (time, y, x); `{dim}` is missing")
    if not np.issubdtype(series["time"].dtype, np.datetime64):
        raise UsageError(
            f"the `time` coordinate must be datetime64 (got {series['time'].dtype}): decode "
            "times, e.g. xr.decode_cf(dataset) or pd.to_datetime"
        )
    extra = [d for d in series.dims if d not in ("time", "y", "x")]
    if extra:
        raise UsageError(f"the canopy product takes dims (time, y, x) only; drop or select {extra}")
    series = series.sortby("time")
    return series.astype("float32").transpose("time", "y", "x")


def _shift_days(
    series: xr.Dataset,
    *,
    hemisphere: str | None,
    latitude: float | None,
) -> np.ndarray:
    """Per-pixel season shift (0 north, 182 south) from the options or the CRS."""
    shape = (series.sizes["y"], series.sizes["x"])
    if hemisphere is not None and latitude is not None:
        raise UsageError("pass either hemisphere= or latitude= to the canopy product, not both")
    if hemisphere is not None:
        if hemisphere not in ("north", "south"):
            raise UsageError(f"hemisphere must be 'north' or 'south' (got {hemisphere!r})")
        return np.full(shape, season_shift_days(-1.0 if hemisphere == "south" else 1.0))
    if latitude is not None:
        if not -90.0 <= float(latitude) <= 90.0:
            raise UsageError(f"latitude must be within -90..90 degrees (got {latitude})")
        return np.full(shape, season_shift_days(float(latitude)))
    return season_shift_days(pixel_latitude(series))
