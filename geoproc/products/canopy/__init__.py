"""Tree canopy product: leaf type (none / broadleaf / conifer), canopy cover and evidence QA per year.

Method (default ``method="metrics"``, `metric_rules`): per pixel and calendar year,
the clear observations of whatever optical bands the dataset has (any subset of blue, green,
red, nir/nir08, swir16, swir22, or an ``ndvi`` variable alone; irregular dates, clouds as
NaN, a dense series or a few seasonal medians) are reduced to temporal statistics (NDVI
percentiles, hemisphere-aligned seasonal medians, leaf-on reflectance; `canopy_metrics`),
and calibrated soft rules decide tree vs non-tree from the evergreen-ness and SWIR darkness
of the canopy and conifer vs broadleaf from the leaf-off contrast and NIR darkness. It was
calibrated and validated on real Sentinel-2 series (see `canopy_real_cases`). Two methods
on twelve season-aligned monthly composites of the six HLS bands remain: ``model``, a
shift-invariant temporal CNN (Pelletier et al. 2019 TempCNN) trained on the synthetic
sample archive, and ``rules``, the phenology/spectral-trait baseline (HRL Dominant Leaf
Type logic). Whatever the method, on an image with a known pixel size the per-pixel tree
probability is then averaged over a disk of the FAO FRA 2020 minimum forest area (0.5 ha,
``mapping_unit_ha``; `mapping_unit`) before the class is chosen, as forest maps and
references map areas, not pixels; isolated pixel series stay per pixel. The attribute
``mapping_unit`` says which applied. Parameters: `CanopyParams`.

Outputs, dims ``(year, y, x)`` always (length-1 ``year`` for one year), so stores of one
year and of many look alike (a series spanning less than a year across New Year, e.g.
seasonal medians from December, is one layer labelled with its middle date's year):

* ``canopy_class`` uint8: 0 no tree, 1 broadleaf, 2 conifer, 255 no data;
* ``canopy_cover`` uint8 percent 0..100 (255 no data);
* ``canopy_probability`` uint8 percent 0..100: probability of the chosen class (255 no data;
  on images its tree part is the mean over the mapping-unit disk);
* QA (how much evidence there was): ``canopy_clear_count`` uint16 clear observations,
  ``canopy_months_observed`` uint8 0..12 months with real (not interpolated) data,
  ``canopy_seasons_covered`` uint8 0..4 seasons (hemisphere-aligned DJF/MAM/JJA/SON) with data;
* optional ``canopy_class_probability`` float32 (year, class, y, x) with ``all_probabilities=True``.

A pixel with fewer than ``min_clear`` clear observations (all bands used finite) in a year
is no data in every product variable: a masked input gives nodata, never a guess. Dense
series and a few seasonal composites (e.g. three dates) are both valid input; the QA
variables say which one a pixel had.
"""

from __future__ import annotations

import dataclasses
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
from geoproc.products.canopy.mapping_unit import (
    MAX_RADIUS_PX,
    MappingUnit,
    area_mean,
    mapping_unit_for,
)
from geoproc.products.canopy.params import CanopyParams

UNKNOWN_SHIFT = -1
"""Season shift of a pixel whose hemisphere is unknown (no CRS, no latitude, no option)."""
INPUT_BANDS = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22", "ndvi")
"""Variables the default method reads when present (common names, plus a plain ``ndvi``)."""

NODATA = 255
CLASS_MEANINGS = ("no_tree", "broadleaf", "conifer")

SPEC = ProductSpec(
    name="canopy",
    version="2.1.0",
    method=(
        "Per-pixel temporal statistics (NDVI percentiles, hemisphere-aligned seasonal medians, "
        "leaf-on reflectance; Hansen et al. 2013, Potapov et al. 2021) -> calibrated soft rules: "
        "tree from evergreen-ness and SWIR darkness, conifer from leaf-off NDVI contrast and "
        "NIR darkness (HRL Dominant Leaf Type, Immitzer et al. 2016/2019); on images the tree "
        "probability is averaged over the FAO FRA 2020 minimum forest area (0.5 ha) before "
        "the class is chosen (HRL Forest Type mapping unit); alternatives: "
        "temporal CNN (TempCNN) or phenology rules on monthly HLS composites"
    ),
    required_inputs=(),
    optional_inputs=INPUT_BANDS,
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
    halo=MAX_RADIUS_PX,
)

_QA_OUTPUTS = (
    ("canopy_clear_count", "uint16"),
    ("canopy_months_observed", "uint8"),
    ("canopy_seasons_covered", "uint8"),
)


def run(dataset: xr.Dataset, *, params: CanopyParams | None = None, **options) -> xr.Dataset:
    """Canopy type, cover, probability and QA per calendar year of ``dataset``.

    Options (keywords, see `CanopyParams`): ``method`` (`metrics` default, `model`,
    `rules`), ``weights``, ``hemisphere``, ``latitude``, ``mapping_unit_ha``, ``min_clear``,
    ``all_probabilities``, ``device``, ``block_size``; or one ``params=CanopyParams(...)``.
    Lazy (dask) input gives lazy output; eager input is processed in ``block_size`` blocks.
    """
    if params is None:
        params = CanopyParams.from_options(options)
    elif options:
        params = dataclasses.replace(params, **options)
    series = _validated_series(dataset, params.method)
    model_info: dict = {}
    if params.method == "model":
        from geoproc.products.canopy.model import load_model

        loaded = load_model(params.weights, device=params.device)  # fail early on a bad card
        model_info = {
            "model_name": loaded.card["properties"]["mlm:name"],
            "model_version": loaded.version,
            "model_sha256": loaded.sha256,
        }
    shift = xr.DataArray(
        _shift_days(
            series, hemisphere=params.hemisphere, latitude=params.latitude, method=params.method
        ),
        dims=("y", "x"),
        coords={"y": series["y"], "x": series["x"]},
    )
    stacked = series.to_dataarray("band").transpose("band", "time", "y", "x")
    block = params.block_size
    if stacked.chunks is None:
        stacked = stacked.chunk({"band": -1, "time": -1, "y": block, "x": block})
        eager = True
    else:
        stacked = stacked.chunk({"band": -1, "time": -1})
        eager = False
    shift = shift.chunk(dict(zip(("y", "x"), stacked.chunks[2:], strict=True)))
    unit = mapping_unit_for(series, float(params.mapping_unit_ha))
    per_year = []
    for year, steps in _periods(stacked["time"].values):
        one_year = stacked.isel(time=steps)
        per_year.append(_run_year(one_year, shift, params, unit).expand_dims(year=[year]))
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
    out = apply_output_attrs(out, SPEC, {**params.as_attrs(), **model_info})
    out.attrs.update(model_info)
    out.attrs["parameters_sha256"] = params.fingerprint()
    out.attrs["mapping_unit"] = unit.description
    out.attrs["input_bands"] = " ".join(str(b) for b in series.data_vars)
    if series.attrs.get("reflectance_scaled"):
        out.attrs["input_scaled_by_1e-4"] = series.attrs["reflectance_scaled"]
    known = np.asarray(shift.values) != UNKNOWN_SHIFT
    out.attrs["season_alignment"] = (
        "hemisphere-aligned (day of year +182 south of the equator)"
        if known.all()
        else "none: no CRS, latitude or hemisphere given; leaf type from the leaf-on minus "
        "p10 NDVI contrast"
    )
    out["year"].attrs.update({"long_name": "calendar year of the observations", "units": "1"})
    return out


def _periods(times: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(year label, time indices) per output layer: one layer per calendar year, except that
    a series spanning less than a year (e.g. four seasonal medians from December to
    October) is one layer, labelled with the year of its middle date, rather than a
    one-date layer for the December and a three-date one for the rest."""
    times = np.asarray(times).astype("datetime64[ns]")
    years = times.astype("datetime64[Y]").astype(int) + 1970
    span = times.max() - times.min() if times.size else np.timedelta64(0, "D")
    if np.unique(years).size > 1 and span < np.timedelta64(365, "D"):
        middle = times.min() + span / 2
        return [(int(middle.astype("datetime64[Y]").astype(int) + 1970), np.arange(times.size))]
    return [(int(y), np.flatnonzero(years == y)) for y in np.unique(years)]


def composites_for(
    dataset: xr.Dataset,
    *,
    hemisphere: Literal["north", "south"] | None = None,
    latitude: float | None = None,
) -> tuple[MonthlyComposites, tuple[int, int]]:
    """Monthly composites of a whole (time, y, x) dataset in memory, pixels in row-major
    order, with the (y, x) shape: the training path of the product."""
    series = _validated_series(dataset, "model")
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
    stacked: xr.DataArray, shift: xr.DataArray, params: CanopyParams, unit: MappingUnit
) -> xr.Dataset:
    """One year: per-pixel probabilities (`_canopy_block`), the tree probability averaged
    over the mapping unit (`mapping_unit.area_mean`, a spatial step with overlap), then the
    class, its probability and the cover per pixel (`decide_classes`)."""
    times = stacked["time"].values
    per_pixel = xr.apply_ufunc(
        _canopy_block,
        stacked,
        shift,
        input_core_dims=[["band", "time"], []],
        output_core_dims=[[]] * (len(_QA_OUTPUTS) + 3),
        dask="parallelized",
        output_dtypes=[dtype for _, dtype in _QA_OUTPUTS] + ["float32"] * 3,
        kwargs={
            "times": times,
            "bands": tuple(str(b) for b in stacked["band"].values),
            "params": params,
        },
    )
    *qa, p_tree, p_conifer, cover = per_pixel
    p_area = p_tree.copy(data=area_mean(p_tree.data, unit))
    decided = xr.apply_ufunc(
        decide_classes,
        p_area,
        p_conifer,
        cover,
        output_core_dims=[[], [], [], ["class"]],
        dask="parallelized",
        output_dtypes=["uint8", "uint8", "uint8", "float32"],
        dask_gufunc_kwargs={"output_sizes": {"class": len(CLASS_MEANINGS)}},
        kwargs={"zero_cover": params.method == "metrics"},
    )
    out = xr.Dataset(
        {
            "canopy_class": decided[0],
            "canopy_cover": decided[1],
            "canopy_probability": decided[2],
            **{name: da for (name, _), da in zip(_QA_OUTPUTS, qa, strict=True)},
        }
    )
    if params.all_probabilities:
        out["canopy_class_probability"] = (
            decided[3].transpose("class", "y", "x").assign_coords({"class": list(CLASS_MEANINGS)})
        )
    return out


def _canopy_block(
    block: np.ndarray,
    shift: np.ndarray,
    *,
    times: np.ndarray,
    bands: tuple[str, ...],
    params: CanopyParams,
) -> tuple[np.ndarray, ...]:
    """Per-pixel evidence for one (y, x, band, time) block, the numpy kernel of the product:
    the QA counts, P(tree), P(conifer | tree) and the cover a tree pixel has (NaN where a
    pixel has too few clear observations or no result)."""
    ny, nx, n_bands, n_time = block.shape
    values = np.ascontiguousarray(block.reshape(ny * nx, n_bands, n_time).transpose(2, 1, 0))
    shifts = shift.reshape(-1)
    p_conifer = None
    if params.method == "metrics":
        from geoproc.products.canopy.metric_rules import classify_metrics

        result = classify_metrics(
            {b: values[:, i, :] for i, b in enumerate(bands)}, times, shift_days=shifts
        )
        probabilities, cover, clear = result.probabilities, result.cover, result.clear_count
        p_conifer = result.conifer
        months_observed, seasons_covered = result.months_observed, result.seasons_covered
    else:
        composites = monthly_composites(values, times, shift_days=shifts)
        clear = composites.clear_count
        months_observed, seasons_covered = (
            composites.months_observed,
            composites.seasons_covered,
        )
        if params.method == "model":
            from geoproc.products.canopy.model import load_model, model_features, predict

            loaded = load_model(params.weights, device=params.device)
            probabilities = np.full((len(CLASS_MEANINGS), ny * nx), np.nan, dtype="float32")
            cover = np.full(ny * nx, np.nan, dtype="float32")
            pick = np.flatnonzero(clear >= params.min_clear)
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
    enough = clear >= params.min_clear
    valid = enough & np.isfinite(probabilities).all(axis=0) & np.isfinite(cover)
    probabilities = np.asarray(probabilities, dtype="float64")
    p_tree = probabilities[1] + probabilities[2]
    if p_conifer is None:  # leaf type given tree, from the class probabilities
        with np.errstate(invalid="ignore", divide="ignore"):
            p_conifer = np.where(p_tree > 0, probabilities[2] / p_tree, 0.5)
    outputs = (
        np.minimum(clear, np.iinfo("uint16").max).astype("uint16"),
        np.asarray(months_observed).astype("uint8"),
        np.asarray(seasons_covered).astype("uint8"),
        np.where(valid, p_tree, np.nan).astype("float32"),
        np.where(valid, p_conifer, np.nan).astype("float32"),
        np.where(valid, cover, np.nan).astype("float32"),
    )
    return tuple(o.reshape(ny, nx) for o in outputs)


def decide_classes(
    p_tree: np.ndarray, p_conifer: np.ndarray, cover: np.ndarray, *, zero_cover: bool
) -> tuple[np.ndarray, ...]:
    """Class (argmax of no tree, broadleaf, conifer), cover and the chosen class's
    probability from P(tree) (after the mapping unit) and P(conifer | tree); NaN P(tree)
    is no data in every output."""
    valid = np.isfinite(p_tree)
    p = np.stack([1.0 - p_tree, p_tree * (1.0 - p_conifer), p_tree * p_conifer], axis=-1)
    p = np.where(valid[..., None], p, np.nan).astype("float32")
    canopy_class = np.where(valid, np.argmax(np.nan_to_num(p, nan=-1.0), axis=-1), NODATA)
    chosen = np.take_along_axis(np.nan_to_num(p), canopy_class.clip(0, 2)[..., None], -1)[..., 0]
    if zero_cover:  # the metric rules state cover for tree pixels only
        cover = np.where(canopy_class == 0, 0.0, cover)
    return (
        canopy_class.astype("uint8"),
        np.where(valid, np.rint(np.clip(cover, 0, 100)), NODATA).astype("uint8"),
        np.where(valid, np.rint(100 * chosen), NODATA).astype("uint8"),
        p,
    )


def _validated_series(dataset: xr.Dataset, method: str = "metrics") -> xr.Dataset:
    """The bands a method reads as a (time, y, x) float Dataset, or a UsageError naming
    what is wrong. `metrics` takes any of `INPUT_BANDS` with red and nir08/nir (or ndvi);
    `model` and `rules` need the six HLS bands."""
    if not isinstance(dataset, xr.Dataset):
        raise UsageError("the canopy product takes an xarray.Dataset of bands by common name")
    if method == "metrics":
        names = [b for b in INPUT_BANDS if b in dataset.data_vars]
        has_nir = "nir08" in names or "nir" in names
        if not ("red" in names and has_nir) and "ndvi" not in names:
            raise UsageError(
                "the canopy product needs `red` and `nir08` (or `nir`), or an `ndvi` variable; "
                f"found {', '.join(map(str, dataset.data_vars)) or 'no variables'} (rename to "
                "STAC common names, e.g. S2 B04 -> red, B8A -> nir08, B08 -> nir)"
            )
        if "red" in names and has_nir:
            names = [b for b in names if b != "ndvi"]
        if "nir08" in names and "nir" in names:
            names.remove("nir")  # the narrow NIR is the one HLS L30 and S30 share
    else:
        names = list(CANOPY_BANDS)
        missing = [b for b in CANOPY_BANDS if b not in dataset.data_vars]
        if missing:
            raise UsageError(
                f"canopy method={method!r} needs bands {', '.join(CANOPY_BANDS)}; missing: "
                f"{', '.join(missing)} (rename to STAC common names, e.g. HLS B8A/B05 -> "
                "nir08), or use method='metrics', which takes any subset"
            )
    series = dataset[names]
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
    series = series.sortby("time").astype("float32").transpose("time", "y", "x")
    if method == "metrics":
        series = _as_reflectance(series)
    return series


def _as_reflectance(series: xr.Dataset) -> xr.Dataset:
    """Reflectance (and NDVI) delivered as integers x 10000 (S2 L2A / HLS digital numbers
    without their scale) are scaled to 0..1, judged from a strided sample: physical surface
    reflectance and NDVI stay below ~1.5, digital numbers of land reach hundreds or more.
    The +1000 offset of S2 baseline 04.00 cannot be told from the values and is not removed."""
    nt, ny, nx = (series.sizes[d] for d in ("time", "y", "x"))
    if series.chunks:  # lazy: one corner window, so only the first chunks are read
        sample = series.isel(time=slice(0, 16), y=slice(0, 64), x=slice(0, 64))
    else:
        sample = series.isel(
            time=slice(None, None, max(1, nt // 8)),
            y=slice(None, None, max(1, ny // 32)),
            x=slice(None, None, max(1, nx // 32)),
        )
    scaled = {}
    for name in series.data_vars:
        values = np.asarray(sample[name].values, dtype="float64")
        values = values[np.isfinite(values)]
        if values.size and np.percentile(np.abs(values), 99) > 2.0:
            scaled[name] = series[name] * np.float32(1e-4)
    if not scaled:
        return series
    out = series.assign(scaled)
    out.attrs["reflectance_scaled"] = " ".join(scaled)
    return out


def _shift_days(
    series: xr.Dataset,
    *,
    hemisphere: str | None,
    latitude: float | None,
    method: str = "model",
) -> np.ndarray:
    """Per-pixel season shift (0 north, 182 south) from the options, the CRS or latitude
    coordinates. With none of them, `metrics` gets `UNKNOWN_SHIFT` (its tree decision needs
    no calendar; leaf type then uses the hemisphere-free leaf-on minus p10 contrast); the
    composite methods need the seasons and raise a UsageError naming the options."""
    shape = (series.sizes["y"], series.sizes["x"])
    if hemisphere is not None:
        return np.full(shape, season_shift_days(-1.0 if hemisphere == "south" else 1.0))
    if latitude is not None:
        return np.full(shape, season_shift_days(float(latitude)))
    try:
        return season_shift_days(pixel_latitude(series))
    except UsageError:
        for name in ("latitude", "lat"):
            if name in series.coords and set(series[name].dims) <= {"y", "x"}:
                lat = series[name].broadcast_like(series[next(iter(series.data_vars))].isel(time=0))
                return season_shift_days(np.asarray(lat.transpose("y", "x").values, "float64"))
        if method == "metrics":
            return np.full(shape, UNKNOWN_SHIFT, dtype="int64")
        raise
