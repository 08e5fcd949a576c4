"""Land surface temperature (LST) from thermal brightness temperature, per scene.

Method: emissivity from NDVI thresholds (NDVI-THM, Sobrino et al. 2004, 2008) with water and
snow/ice given library emissivities from the Fmask bits or NDWI/NDSI (`lst_emissivity`);
then, per pixel and time step, the best method the inputs allow:

1. inversion of the radiative transfer equation when the band atmosphere (tau, Lu, Ld) is
   known (`lst_rte`; as in the Landsat Collection 2 ST product, Cook et al. 2014);
2. else the Landsat 8 split-window when `lwir12` is present (Jimenez-Munoz & Sobrino 2008;
   Jimenez-Munoz et al. 2014), with the water vapour when known;
3. else the generalised single-channel method (Jimenez-Munoz et al. 2009, 2014) with the
   water vapour (when none is known: estimated from the pixel's brightness temperature,
   `single_channel.climatological_water_vapour`, flagged as climatology).

Inputs are brightness temperatures in KELVIN (`lwir11`, optional `lwir12`); radiances use the
TIRS K1/K2 constants (`lst_planck`). ``lst_qa`` records per pixel whether it is masked, the
method, where the atmosphere came from and which emissivity rule applied. Wherever an input
is masked (NaN) the output is NaN: no value is guessed.

Clouds Fmask missed are screened (`lst_cloud_screen`: Fmask-style spectral and temperature
tests, Zhu & Woodcock 2012) and set to nodata with the ``residual_cloud`` bit; pixels within
``near_cloud_m`` carry the ``near_cloud`` bit (and, on request, a wider uncertainty as in the
USGS C2 ST_QA, Laraby & Schott 2018).

``lst_uncertainty`` is one sigma of the LST: emissivity (per-class sigma), the atmosphere
(per-pixel map error; in-scene spread of a scene-mean atmosphere; or, with none, the spread of
the estimated water vapour and the method's algorithm error) and the sensor's NEdT, in
quadrature (the budget and its sources: `uncertainty`). The constants fitted on real
Landsat C2 L2 scenes are checked leave-one-scene-out against the USGS ST (`real_cases`). Atmospheres in
``atmos_*`` variables with spatial dimensions (e.g. the USGS ST_ATRAN/URAD/DRAD layers read by
`landsat_c2`) are used per pixel.

A Landsat C2 L2 cube (``st_trad``, ``st_urad``, ``st_drad``, ``st_atran``, optionally
``st_emis``) is read as it is (`cube_st`): ``lwir11`` becomes the TOA brightness temperature
of ST_TRAD with the band's K1/K2, the ST atmosphere is used per pixel, and ``st_emis`` with
``usgs_emissivity=True``. The USGS surface temperature (``st_temperature``, or an ``lwir11``
whose attributes say surface temperature) is never taken for a brightness temperature.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from geoproc.catalog.sensors import DEFAULT_FMASK_MASKED, FMASK_BITS, FMASK_NODATA
from geoproc.errors import UsageError
from geoproc.products.base import ProductSpec, VariableSpec, apply_output_attrs
from geoproc.products.lst import emissivity as emis
from geoproc.products.lst.cloud_screen import (
    CloudScreen,
    clear_land_bt,
    cloud_distance,
    near_cloud_sigma,
    residual_cloud,
    scene_t_low,
)
from geoproc.products.lst.cube_st import band_constants, has_st_layers, st_inputs, time_sensors
from geoproc.products.lst.params import METHODS, LSTParams
from geoproc.products.lst.planck import constants_for_dataset, thermal_band
from geoproc.products.lst.rte import (
    AtmosphereUncertainty,
    SceneAtmosphereVariability,
    invert_rte,
    rte_uncertainty,
)
from geoproc.products.lst.single_channel import (
    DEFAULT_WATER_VAPOUR,
    DEFAULT_WATER_VAPOUR_SIGMA,
    KNOWN_WATER_VAPOUR_SIGMA,
    climatological_water_vapour,
    sc_transmittance,
    single_channel_lst,
    single_channel_uncertainty,
    split_window_lst,
    split_window_uncertainty,
)
from geoproc.products.lst.uncertainty import quadrature, sensor_noise_sigma

__all__ = ["SPEC", "METHODS", "LSTParams", "SceneAtmosphereVariability", "run"]

QA_MASKED = 1
"""Bit 0: no LST (an input is masked or unusable)."""
QA_METHOD_SHIFT = 1
"""Bits 1-2: method code, see `METHOD_CODES`."""
METHOD_CODES = {"rte": 1, "single_channel": 2, "split_window": 3}
QA_ATMOSPHERE_SHIFT = 3
"""Bits 3-4: where the atmosphere (RTE) or water vapour (SC, SW) came from."""
ATMOSPHERE_SOURCES = {"climatology": 1, "dataset": 2, "option": 3}
"""0 stays free for masked pixels, so CF flag decoding never reads a masked pixel as a source."""
QA_CLASS_SHIFT = 5
"""Bits 5-7: emissivity rule, `lst_emissivity.SURFACE_CLASSES` code + 1 (0 for masked)."""
QA_RESIDUAL_CLOUD = 1 << 8
"""Bit 8: masked because the residual-cloud screen found a cloud Fmask missed (with bit 0)."""
QA_NEAR_CLOUD = 1 << 9
"""Bit 9: valid, but within `CloudScreen.near_cloud_m` of a Fmask cloud (larger uncertainty)."""
_LAND_CLASSES = (emis.SOIL, emis.MIXED, emis.VEGETATION)

_ATMOS_KEYS = {
    "transmittance": "atmos_transmittance",
    "upwelling_radiance": "atmos_upwelling",
    "downwelling_radiance": "atmos_downwelling",
}


def _qa_flags() -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    masks, values, meanings = [QA_MASKED], [QA_MASKED], ["masked"]
    for name, code in METHOD_CODES.items():
        masks.append(3 << QA_METHOD_SHIFT)
        values.append(code << QA_METHOD_SHIFT)
        meanings.append(f"method_{name}")
    for name, code in ATMOSPHERE_SOURCES.items():
        masks.append(3 << QA_ATMOSPHERE_SHIFT)
        values.append(code << QA_ATMOSPHERE_SHIFT)
        meanings.append(f"atmosphere_{name}")
    for code, name in emis.SURFACE_CLASSES.items():
        masks.append(7 << QA_CLASS_SHIFT)
        values.append((code + 1) << QA_CLASS_SHIFT)
        meanings.append(f"emissivity_{name}")
    for bit, name in ((QA_RESIDUAL_CLOUD, "residual_cloud"), (QA_NEAR_CLOUD, "near_cloud")):
        masks.append(bit)
        values.append(bit)
        meanings.append(name)
    return tuple(masks), tuple(values), tuple(meanings)


_QA_MASKS, _QA_VALUES, _QA_MEANINGS = _qa_flags()

SPEC = ProductSpec(
    name="lst",
    version="1.3.1",
    method=(
        "NDVI-THM emissivity with water/snow classes (Sobrino et al. 2004, 2008); RTE inversion "
        "with known atmosphere (Cook et al. 2014), else split-window / generalised single-channel "
        "(Jimenez-Munoz et al. 2008, 2009, 2014); residual-cloud screen after Fmask's spectral and "
        "temperature tests (Zhu & Woodcock 2012); uncertainty from emissivity, per-pixel atmosphere "
        "and in-scene atmosphere spread (Barsi et al. 2003, 2005), water vapour from the scene's "
        "temperature (Reitan 1963) when none is known, sensor NEdT, calibrated on Landsat C2 L2, "
        "optional near-cloud term (Laraby & Schott 2018)"
    ),
    required_inputs=("lwir11",),
    optional_inputs=(
        "lwir12",
        "blue",
        "red",
        "nir08",
        "green",
        "swir16",
        "swir22",
        "fmask",
        "emissivity_lwir11",
        "emissivity_lwir12",
        "atmos_transmittance_lwir11",
        "atmos_upwelling_lwir11",
        "atmos_downwelling_lwir11",
        "atmos_transmittance_lwir12",
        "atmos_upwelling_lwir12",
        "atmos_downwelling_lwir12",
        "atmos_water_vapour",
        # Landsat C2 L2 cubes (`cube_st`): TOA radiance, per-pixel atmosphere and emissivity
        # of the USGS ST product, and its surface temperature (recognised, never read as BT)
        "st_trad",
        "st_urad",
        "st_drad",
        "st_atran",
        "st_emis",
        "st_temperature",
    ),
    temporal="scene",
    outputs=(
        VariableSpec(
            "lst",
            "float32",
            "K",
            "land surface temperature",
            fill_value=np.nan,
            standard_name="surface_temperature",
            valid_range=(150.0, 400.0),
        ),
        VariableSpec(
            "emissivity", "float32", "1", "surface emissivity of the lwir11 band", fill_value=np.nan
        ),
        VariableSpec(
            "lst_uncertainty", "float32", "K", "one-sigma uncertainty of lst", fill_value=np.nan
        ),
        VariableSpec(
            "lst_qa",
            "uint16",
            "1",
            "lst quality: masked, method, atmosphere source, emissivity rule, residual cloud, "
            "near cloud",
            flag_masks=_QA_MASKS,
            flag_values=_QA_VALUES,
            flag_meanings=_QA_MEANINGS,
        ),
    ),
)


def run(
    dataset: xr.Dataset,
    *,
    method: str = "auto",
    atmosphere: dict | str | Path | None = None,
    water_vapour: float | xr.DataArray | None = None,
    emissivity: float | xr.DataArray | dict | None = None,
    emissivity_uncertainty: float = 0.01,
    thermal_constants: str | dict = "auto",
    fmask_masked: tuple[str, ...] = DEFAULT_FMASK_MASKED,
    ndvi_soil: float = 0.2,
    ndvi_vegetation: float = 0.5,
    atmosphere_uncertainty: AtmosphereUncertainty | None = None,
    cloud_screen: CloudScreen | dict | bool | None = True,
    usgs_emissivity: bool = False,
    params: LSTParams | None = None,
    cloud_screen_t_low: np.ndarray | None = None,
    halo_context: tuple[xr.Dataset, dict] | None = None,
    atmosphere_scene_constant: dict[str, bool] | None = None,
) -> xr.Dataset:
    """LST, emissivity, uncertainty and QA for every pixel and time step of `dataset`.

    Options are the fields of `LSTParams` (pass `params` to give them as one object; keyword
    options that differ from their defaults override its fields). `atmosphere` (dict or JSON
    file) overrides the dataset's ``atmos_*`` variables; it takes the STAC
    ``geoproc:atmosphere`` shape ``{"lwir11": {"transmittance", "upwelling_radiance",
    "downwelling_radiance"}, "lwir12": {...}, "water_vapour": g/cm2}``. ``atmos_*_lwir11``
    variables with spatial dimensions are used per pixel; one value per scene gets the
    in-scene spread of `SceneAtmosphereVariability` in its uncertainty. `emissivity` (a value,
    a DataArray, or ``{"lwir11": ..., "lwir12": ...}``) replaces NDVI-THM, e.g. with ASTER GED
    or the USGS ST_EMIS. `cloud_screen` (True for the defaults, a `CloudScreen` or its fields
    as a dict, False to turn it off) masks clouds Fmask missed and widens the uncertainty
    near clouds. `thermal_constants="auto"` takes the band's K1/K2 from the dataset's
    ``spacecraft`` / ``platform`` / ``thermal_k1`` attributes (Landsat 4-9), else Landsat 8.
    ``cloud_screen_t_low`` (one per time step, NaN: not tested) replaces the screen's
    scene percentile when `dataset` is one spatial block of the scene (`scene_statistics`);
    it is derived from the data, so it is no parameter of the output. ``halo_context``:
    (``fmask`` over the block with a halo, the slices of `dataset` in it) for the cloud
    distance of a spatial block (`block_halo`).
    """
    given = {
        "method": method,
        "atmosphere": atmosphere,
        "water_vapour": water_vapour,
        "emissivity": emissivity,
        "emissivity_uncertainty": emissivity_uncertainty,
        "thermal_constants": thermal_constants,
        "fmask_masked": fmask_masked,
        "ndvi_soil": ndvi_soil,
        "ndvi_vegetation": ndvi_vegetation,
        "atmosphere_uncertainty": atmosphere_uncertainty,
        "cloud_screen": cloud_screen,
        "usgs_emissivity": usgs_emissivity,
    }
    if params is not None:
        given = {k: v for k, v in given.items() if not _is_default(k, v)}
    p = LSTParams.from_options(params, **given)
    ds = _check_type(dataset)
    # A block of a cube that mixes sensors runs per sensor even when it holds one sensor's
    # dates, as the whole cube does (`scene_statistics` keys the atmosphere by sensor).
    scene_mixed = bool(atmosphere_scene_constant) and "" not in atmosphere_scene_constant
    mixed = _sensor_groups(ds, p, any_count=scene_mixed)
    if mixed:
        return _run_per_sensor(
            ds, p, mixed, cloud_screen_t_low, halo_context, atmosphere_scene_constant
        )
    ds, constants, st_attrs = _thermal_inputs(ds, p)
    has12 = "lwir12" in ds
    bands = {
        b: thermal_band(b, constants=constants)
        for b in (("lwir11", "lwir12") if has12 else ("lwir11",))
    }
    bands.setdefault("lwir12", None)
    thresholds = emis.NdviThresholds(ndvi_soil=p.ndvi_soil, ndvi_vegetation=p.ndvi_vegetation)
    atm_sigma = p.atmosphere_uncertainty
    screen = p.cloud_screen
    method = p.method

    bt11 = _brightness_temperature(ds, "lwir11")
    bt12 = _brightness_temperature(ds, "lwir12") if has12 else None
    qa_ok = _fmask_clear(ds, p.fmask_masked)

    class_sigma = {
        code: dict(p.emissivity_class_sigma)[name]
        for code, name in emis.SURFACE_CLASSES.items()
        if name in dict(p.emissivity_class_sigma)
    }
    eps, sigma, classes, surface = _emissivities(
        ds, p.emissivity, p.emissivity_uncertainty, thresholds, has12, class_sigma
    )
    atm = _atmosphere(ds, p.atmosphere, p.water_vapour)
    constant = (atmosphere_scene_constant or {}).get("")  # a block: decided scene-wide
    if constant is None:
        constant = _is_scene_constant(atm["transmittance_lwir11"], bt11)
    correction_sigma = p.scene_variability.correction_relative if constant else 0.0

    rte_ok = _finite(
        atm["transmittance_lwir11"], atm["upwelling_lwir11"], atm["downwelling_lwir11"]
    )
    w_known = _finite(atm["water_vapour"])
    w_clim, w_clim_sigma = _scene_water_vapour(bt11, p.dewpoint_depression_k)
    w = xr.where(w_known, atm["water_vapour"], w_clim)
    w_sigma = xr.where(w_known, KNOWN_WATER_VAPOUR_SIGMA, w_clim_sigma)
    w_source = xr.where(w_known, atm["water_vapour_source"], ATMOSPHERE_SOURCES["climatology"])

    wavelength = bands["lwir11"].center_wavelength_um
    rte_args = {
        "transmittance": atm["transmittance_lwir11"],
        "upwelling": atm["upwelling_lwir11"],
        "downwelling": atm["downwelling_lwir11"],
        "band": bands["lwir11"],
    }
    sw_possible = has12 and "lwir12" in eps
    if method == "split_window" and not sw_possible:
        raise UsageError(
            "method='split_window' needs an lwir12 band and its emissivity; add lwir12 (and "
            "red/nir08 or emissivity['lwir12']) to the dataset or use method='auto'."
        )
    sw_ok = _finite(bt12, eps["lwir12"]) if sw_possible else xr.zeros_like(bt11, dtype=bool)
    wanted = _methods_needed(method, rte_ok, sw_possible)
    # Each candidate is built only when it can be chosen: a fully known atmosphere skips
    # the fallbacks (a third of the work on large tiles).
    builders = {
        "rte": lambda: (
            invert_rte(bt11, eps["lwir11"], **rte_args),
            quadrature(
                rte_uncertainty(
                    bt11,
                    eps["lwir11"],
                    sigma["lwir11"],
                    atmosphere_sigma=atm_sigma,
                    correction_sigma=correction_sigma,
                    **rte_args,
                ),
                sensor_noise_sigma(wavelength, eps["lwir11"], atm["transmittance_lwir11"]),
            ),
            atm["rte_source"],
        ),
        "single_channel": lambda: (
            single_channel_lst(bt11, eps["lwir11"], w, band=bands["lwir11"]),
            quadrature(
                single_channel_uncertainty(
                    bt11, eps["lwir11"], sigma["lwir11"], w, w_sigma, band=bands["lwir11"]
                ),
                sensor_noise_sigma(
                    wavelength, eps["lwir11"], sc_transmittance(w, band=bands["lwir11"])
                ),
            ),
            w_source,
        ),
        "split_window": lambda: (
            split_window_lst(bt11, bt12, eps["lwir11"], eps["lwir12"], w),
            quadrature(
                split_window_uncertainty(
                    eps["lwir11"], eps["lwir12"], sigma["lwir11"], sigma["lwir12"], w, w_sigma
                ),
                sensor_noise_sigma(
                    wavelength, eps["lwir11"], sc_transmittance(w, band=bands["lwir11"])
                ),
            ),
            w_source,
        ),
    }
    candidates = {name: builders[name]() for name in wanted}

    choice = _choose_method(method, rte_ok, sw_ok, bt11)
    lst = xr.full_like(bt11, np.nan)
    unc = xr.full_like(bt11, np.nan)
    code = xr.zeros_like(bt11, dtype="uint8")
    source = xr.zeros_like(bt11, dtype="uint8")
    for name, (values, uncertainty, src) in candidates.items():
        use = choice == METHOD_CODES[name]
        lst = xr.where(use, values, lst)
        unc = xr.where(use, uncertainty, unc)
        code = xr.where(use, METHOD_CODES[name], code)
        source = xr.where(use, src, source)

    valid = qa_ok & _finite(lst, unc, eps["lwir11"]) & (lst > 150.0) & (lst < 400.0)
    cloud_residual, near = _screen_clouds(
        ds, bt11, surface, screen, cloud_screen_t_low, halo_context
    )
    if near is not None:
        unc = np.sqrt(unc**2 + near_cloud_sigma(near, screen=screen) ** 2)
    qa = (
        (code.astype("uint16") << QA_METHOD_SHIFT)
        | (source.fillna(0).astype("uint16") << QA_ATMOSPHERE_SHIFT)
        | ((classes.fillna(-1) + 1).astype("uint16") << QA_CLASS_SHIFT)
    )
    if near is not None:
        qa = qa | xr.where(near < screen.near_cloud_m, QA_NEAR_CLOUD, 0).astype("uint16")
    residual_masked = valid & cloud_residual
    valid = valid & ~cloud_residual
    masked_qa = xr.where(residual_masked, QA_MASKED | QA_RESIDUAL_CLOUD, QA_MASKED)
    qa = xr.where(valid, qa, masked_qa).astype("uint16")
    out = xr.Dataset(
        {
            "lst": lst.where(valid).astype("float32"),
            "emissivity": eps["lwir11"].where(valid).astype("float32"),
            "lst_uncertainty": unc.where(valid).astype("float32"),
            "lst_qa": qa,
        }
    )
    out = out.transpose(*bt11.dims)
    for name in out.data_vars:
        out[name].attrs = {}  # inputs' attrs (Fmask flags, BT names) must not leak into outputs
        if "grid_mapping" in ds["lwir11"].attrs:
            out[name].attrs["grid_mapping"] = ds["lwir11"].attrs["grid_mapping"]
    out = apply_output_attrs(out, SPEC, p.as_attrs())
    out.attrs.update(st_attrs)
    return out


def spatially_local(options: dict) -> bool:
    """Whether spatial blocks give the whole-tile result for these run() options: not with
    the near-cloud uncertainty on (it grows with an unbounded distance to the nearest
    cloud); the screen's scene T_low comes from `scene_statistics`, and the near-cloud QA
    bit from a halo as wide as ``near_cloud_m`` (`block_halo`)."""
    screen = _params_of(options).cloud_screen
    return screen is None or screen.near_cloud_sigma_k == 0


def block_halo(inputs: xr.Dataset, **options) -> int:
    """Pixels of context a spatial block needs for the ``near_cloud`` QA bit: the Fmask
    cloud distance is exact inside the block wherever it is below ``near_cloud_m``."""
    screen = _params_of(options).cloud_screen
    if screen is None or "fmask" not in inputs:
        return 0  # Landsat C2 L2 cubes carry st_temperature, not lwir11: Fmask decides
    return int(np.ceil(screen.near_cloud_m / _pixel_size(inputs, inputs["fmask"]))) + 1


def scene_statistics(inputs: xr.Dataset, windows, **options) -> dict:
    """What run() computes over the whole scene, from blocks of the cube `inputs`
    (`windows`: ``(dates, dataset)``, ``dates`` the slice of `inputs`' time steps the
    window holds), as run() options for the blocks:

    - ``cloud_screen_t_low``: the residual-cloud screen's T_low per date of `inputs`, from
      exact clear-land BT value counts merged over the windows, then the percentile run()
      would take of the whole scene (`cloud_screen.scene_t_low`). Memory: one window plus
      the distinct BT values per date (few: BT comes from integer radiance counts).
    - ``atmosphere_scene_constant``: per sensor group of the whole cube (`_sensor_groups`;
      ``""`` when it holds one sensor), whether the lwir11 transmittance is one value over
      the whole scene (`_is_scene_constant`), from its min and max merged over the windows:
      a per-pixel map that happens to be uniform inside one window is not.
    """
    p = _params_of(options)
    screen = p.cloud_screen
    nt = inputs.sizes.get("time", 1)
    sensor_of = [""] * nt
    for sensor, steps in _sensor_groups(inputs, p).items():
        for t in steps:
            sensor_of[t] = sensor
    counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    spans: dict[str, list] = {}
    for dates, window in windows:
        ds = _check_type(window)
        first = dates.start or 0
        groups: dict[str, list[int]] = {}
        for step in range(ds.sizes.get("time", 1)):
            groups.setdefault(sensor_of[first + step], []).append(step)
        for sensor, steps in groups.items():
            q = dataclasses.replace(p, thermal_constants=sensor) if sensor else p
            part = ds.isel(time=steps) if sensor else ds
            _merge_span(spans, sensor, part, q)
            if screen is None:
                continue
            for step, mask, bt in _clear_land(part, q):
                t = first + steps[step]
                values, n = np.unique(bt[mask], return_counts=True)
                if t in counts:
                    values = np.concatenate([counts[t][0], values])
                    n = np.concatenate([counts[t][1], n])
                    values, inverse = np.unique(values, return_inverse=True)
                    n = np.bincount(inverse, weights=n, minlength=values.size).astype("int64")
                counts[t] = (values, n)
    out: dict = {}
    if spans:
        out["atmosphere_scene_constant"] = {
            sensor: span is None or bool(np.all(np.nan_to_num(span[0] - span[1]) == 0.0))
            for sensor, span in spans.items()
        }
    if not counts:
        return out
    t_low = np.full(nt, np.nan)
    for t, (values, n) in counts.items():
        t_low[t] = scene_t_low(values, n, screen=screen)
    return {**out, "cloud_screen_t_low": t_low}


def _merge_span(spans: dict, sensor: str, part: xr.Dataset, p: LSTParams) -> None:
    """Merge one block's per-date max and min of the lwir11 transmittance into ``spans``
    (None: no spatial dimension, one value per scene), NaN-skipping as xarray's max/min."""
    ds, _, _ = _thermal_inputs(part, p)
    value = _atmosphere(ds, p.atmosphere, p.water_vapour)["transmittance_lwir11"]
    spatial = [d for d in getattr(value, "dims", ()) if d in ("y", "x")]
    if not spatial:
        spans.setdefault(sensor, None)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block
        hi = np.asarray(value.max(dim=spatial).values, dtype="float64")
        lo = np.asarray(value.min(dim=spatial).values, dtype="float64")
    if spans.get(sensor) is None:
        spans[sensor] = [hi, lo]
    else:
        spans[sensor] = [np.fmax(spans[sensor][0], hi), np.fmin(spans[sensor][1], lo)]


def _clear_land(ds: xr.Dataset, p: LSTParams):
    """(time index, clear-land mask, BT) per date, as run()'s screen derives them."""
    ds, _, _ = _thermal_inputs(ds, p)
    bt11 = _brightness_temperature(ds, "lwir11")
    if bt11.ndim < 2 or "blue" not in ds or "red" not in ds:
        return
    thresholds = emis.NdviThresholds(ndvi_soil=p.ndvi_soil, ndvi_vegetation=p.ndvi_vegetation)
    surface = _surface(ds, thresholds)
    if surface is None:
        return
    optional = {k: ds[k] for k in ("green", "nir08", "swir16", "swir22") if k in ds}
    mask, bt = clear_land_bt(
        bt11,
        blue=ds["blue"],
        red=ds["red"],
        land=surface.isin(_LAND_CLASSES),
        screen=p.cloud_screen,
        **optional,
    )
    if bt.ndim == 2:
        yield 0, mask, bt
        return
    order = list(bt11.dims)
    assert order[0] == "time", order
    for t in range(bt.shape[0]):
        yield t, mask[t], bt[t]


_BLOCK_OPTIONS = ("cloud_screen_t_low", "halo_context", "atmosphere_scene_constant")
"""run() options the product stage derives for a spatial block: no parameters."""


def _params_of(options: dict) -> LSTParams:
    """The `LSTParams` run(**options) builds (same rules for ``params`` and keywords)."""
    options = {k: v for k, v in options.items() if k not in _BLOCK_OPTIONS}
    params = options.pop("params", None)
    given = {k: v for k, v in _RUN_DEFAULTS.items() if k not in (*_BLOCK_OPTIONS, "params")}
    given.update(options)
    if params is not None:
        given = {k: v for k, v in given.items() if not _is_default(k, v)}
    return LSTParams.from_options(params, **given)


def _thermal_inputs(ds: xr.Dataset, p: LSTParams):
    """(dataset with BT inputs, thermal constants, ST attributes) for one sensor's steps."""
    if p.thermal_constants != "auto":
        constants, constants_source = p.thermal_constants, "thermal_constants option"
    elif has_st_layers(ds):
        constants, constants_source = band_constants(ds)
    else:
        constants, constants_source = constants_for_dataset(ds.attrs), ""
    ds, st_attrs = st_inputs(
        ds,
        constants=constants,
        constants_source=constants_source,
        usgs_emissivity=p.usgs_emissivity,
    )
    return _check_dataset(ds), constants, st_attrs


def _surface(ds: xr.Dataset, thresholds) -> xr.DataArray | None:
    """NDVI-THM surface classes (with Fmask/NDWI/NDSI water and snow), None without red/nir."""
    if "red" not in ds or "nir08" not in ds:
        return None
    optional = {k: ds[k] for k in ("green", "swir16", "fmask") if k in ds}
    return emis.surface_classes(red=ds["red"], nir08=ds["nir08"], thresholds=thresholds, **optional)


def _scene_water_vapour(bt11: xr.DataArray, depression_k: float):
    """Per pixel (w, sigma_w) from the pixel's own brightness temperature
    (`climatological_water_vapour`); the fixed climatology where it has none.

    Per pixel, not per scene: the output stays spatially local, so the product stage's
    spatial blocks give the whole-tile result (`geoproc.products.DECLARED_BLOCKING`).
    """
    w, w_sigma = climatological_water_vapour(bt11, depression_k)
    known = np.isfinite(w)
    return (
        xr.where(known, w, DEFAULT_WATER_VAPOUR),
        xr.where(known, w_sigma, DEFAULT_WATER_VAPOUR_SIGMA),
    )


def _sensor_groups(ds: xr.Dataset, p: LSTParams, any_count: bool = False) -> dict[str, list[int]]:
    """Time-step indices per Landsat sensor when a C2 L2 cube mixes sensors (else empty):
    each thermal band has its own K1/K2, so each sensor's steps are run on their own; steps
    no product id names are taken as Landsat 8 (said in the output attributes).
    ``any_count``: group even one sensor's steps (a block of a cube that mixes them)."""
    if p.thermal_constants != "auto" or "thermal_k1" in ds.attrs or not has_st_layers(ds):
        return {}
    per_time = time_sensors(ds)
    if per_time is None or (len(set(per_time[0])) < 2 and not any_count):
        return {}  # one sensor (or one named, none unknown): `band_constants` decides
    groups: dict[str, list[int]] = {}
    for i, sensor in enumerate(per_time[0]):
        groups.setdefault(sensor or "landsat8", []).append(i)
    return groups


def _run_per_sensor(
    ds: xr.Dataset,
    p: LSTParams,
    groups: dict[str, list[int]],
    t_low: np.ndarray | None = None,
    context: tuple[xr.Dataset, dict] | None = None,
    constant: dict[str, bool] | None = None,
) -> xr.Dataset:
    parts = []
    for sensor, steps in groups.items():
        part = run(
            ds.isel(time=steps),
            params=dataclasses.replace(p, thermal_constants=sensor),
            cloud_screen_t_low=None if t_low is None else np.asarray(t_low)[steps],
            halo_context=None if context is None else (context[0].isel(time=steps), context[1]),
            atmosphere_scene_constant=None
            if constant is None or sensor not in constant
            else {"": constant[sensor]},
        )
        parts.append(part)
    out = xr.concat(parts, dim="time", combine_attrs="override").sortby("time")
    out = apply_output_attrs(out, SPEC, p.as_attrs())
    out.attrs["geoproc:thermal_constants"] = (
        "per time step: "
        + ", ".join(f"{sensor} ({len(steps)} steps)" for sensor, steps in groups.items())
        + f" ({time_sensors(ds)[1]})"
    )
    for key in ("geoproc:thermal_k1", "geoproc:thermal_k2", "geoproc:thermal_sensor"):
        out.attrs.pop(key, None)
    return out


def _is_default(name: str, value) -> bool:
    default = _RUN_DEFAULTS[name]
    if value is default:
        return True
    return (
        isinstance(value, (str, int, float, tuple))
        and type(value) is type(default)
        and value == default
    )


def _is_scene_constant(value, bt11: xr.DataArray) -> bool:
    """True when an atmosphere is one value per scene (and time): no spatial dimension, or
    an in-memory map that holds the same value at every pixel (a broadcast scene mean)."""
    spatial = [d for d in bt11.dims if d != "time"]
    dims = getattr(value, "dims", ())
    if not any(d in dims for d in spatial):
        return True
    if value.chunks is not None:
        return False
    span = value.max(dim=[d for d in spatial if d in dims]) - value.min(
        dim=[d for d in spatial if d in dims]
    )
    return bool(np.all(np.nan_to_num(span.values) == 0.0))


def _check_type(dataset) -> xr.Dataset:
    if not isinstance(dataset, xr.Dataset):
        raise UsageError(
            f"LST needs an xarray.Dataset with common band names, got {type(dataset).__name__}."
        )
    return dataset


def _check_dataset(dataset: xr.Dataset) -> xr.Dataset:
    if "lwir11" not in dataset:
        raise UsageError(
            "LST needs the thermal band 'lwir11' (TOA brightness temperature in kelvin); "
            f"the dataset has {', '.join(map(str, dataset.data_vars)) or 'no variables'}."
        )
    return dataset


def _brightness_temperature(ds: xr.Dataset, name: str) -> xr.DataArray:
    """BT in kelvin as float64; values outside 150-400 K cannot be a brightness temperature."""
    bt = ds[name].astype("float64")
    if bt.chunks is None:
        finite = bt.values[np.isfinite(bt.values)]
        if finite.size and float(np.median(finite)) < 150.0:
            raise UsageError(
                f"{name!r} must be brightness temperature in kelvin; its median is "
                f"{float(np.median(finite)):.2f} (degrees Celsius? add 273.15)."
            )
    return bt.where((bt > 150.0) & (bt < 400.0))


def _fmask_clear(ds: xr.Dataset, masked_bits: tuple[str, ...]) -> xr.DataArray | bool:
    """False where Fmask flags one of `masked_bits` (cloud, shadow by default).

    Fmask fill (255, or NaN) means "no QA here" (e.g. a Sentinel-2 step in a mixed cube),
    not "bad pixel": masking is then left to the NaNs of the bands, as the cube set them.
    """
    if "fmask" not in ds:
        return True
    unknown = [b for b in masked_bits if b not in FMASK_BITS]
    if unknown:
        raise UsageError(f"Unknown Fmask bits {unknown}; use names from {', '.join(FMASK_BITS)}.")
    fm = ds["fmask"]
    bits = fm.fillna(FMASK_NODATA).astype("uint16")
    mask = sum(1 << FMASK_BITS[b] for b in masked_bits)
    return (bits == FMASK_NODATA) | ((bits & mask) == 0)


def _emissivities(ds, option, option_sigma, thresholds, has12, class_sigma=None):
    """Per-band emissivity and sigma, and the per-pixel class code used for the QA."""
    eps, sigma = {}, {}
    bands = ("lwir11", "lwir12") if has12 else ("lwir11",)
    provided = {}
    for band in bands:
        value = (
            option.get(band) if isinstance(option, dict) else (option if band == "lwir11" else None)
        )
        if value is None and f"emissivity_{band}" in ds:
            value = ds[f"emissivity_{band}"]
        if value is not None:
            provided[band] = _provided_emissivity(value, band)
    have_reflectance = "red" in ds and "nir08" in ds
    if "lwir11" not in provided and not have_reflectance:
        raise UsageError(
            "LST needs emissivity: add 'red' and 'nir08' reflectance to the dataset, an "
            "'emissivity_lwir11' variable, or pass emissivity=... ."
        )
    classes = _surface(ds, thresholds)
    for band in bands:
        if band in provided:
            eps[band] = provided[band]
            sigma[band] = xr.full_like(ds["lwir11"], option_sigma, dtype="float64").where(
                np.isfinite(provided[band])
            )
        elif classes is not None:
            eps[band], sigma[band] = emis.emissivity_for_classes(
                classes,
                ds["red"],
                ds["nir08"],
                band=band,
                thresholds=thresholds,
                class_sigma=class_sigma,
            )
    surface = classes
    if "lwir11" in provided:
        classes = xr.full_like(ds["lwir11"], emis.PROVIDED, dtype="float64")
    return eps, sigma, classes, surface


def _screen_clouds(
    ds: xr.Dataset,
    bt11: xr.DataArray,
    surface,
    screen: CloudScreen | None,
    t_low=None,
    context: tuple[xr.Dataset, dict] | None = None,
):
    """(residual cloud mask, distance to Fmask cloud in m or None) for `screen`; `t_low`:
    the scenes' T_low when `ds` is a block of them (`scene_statistics`)."""
    no_cloud = xr.zeros_like(bt11, dtype=bool)
    if screen is None:
        return no_cloud, None
    near = None
    if "fmask" in ds and bt11.ndim >= 2:
        size = _pixel_size(ds, bt11)
        if context is not None and "fmask" in context[0]:  # a block: distances with its halo
            # the pixel size from the halo window: a 1-px-wide core has no spacing to read
            size = _pixel_size(context[0], context[0]["fmask"])
            near = cloud_distance(context[0]["fmask"], pixel_size_m=size).isel(context[1])
        else:
            near = cloud_distance(ds["fmask"], pixel_size_m=size)
    if surface is None or "blue" not in ds or "red" not in ds or bt11.ndim < 2:
        return no_cloud, near  # no land classes or no HOT: the spectral tests cannot run
    land = surface.isin(_LAND_CLASSES)
    optional = {k: ds[k] for k in ("green", "nir08", "swir16", "swir22") if k in ds}
    found = residual_cloud(
        bt11, blue=ds["blue"], red=ds["red"], land=land, screen=screen, t_low=t_low, **optional
    )
    return found, near


def _pixel_size(ds: xr.Dataset, bt11: xr.DataArray) -> float:
    """Pixel size (m) from the x coordinate spacing; 30 m (HLS) when it cannot be read."""
    xdim = bt11.dims[-1]
    if xdim in ds.coords and ds.sizes[xdim] > 1:
        step = abs(float(ds[xdim].values[1] - ds[xdim].values[0]))
        if step > 0:
            return step
    return 30.0


def _provided_emissivity(value, band: str):
    arr = value if isinstance(value, xr.DataArray) else xr.DataArray(float(value))
    if arr.chunks is None:
        finite = arr.values[np.isfinite(arr.values)]
        if finite.size and (finite.min() <= 0.5 or finite.max() > 1.0):
            raise UsageError(
                f"Emissivity for {band} must lie in (0.5, 1]; got {finite.min():.4g}..{finite.max():.4g} "
                "(scaled integers? apply the scale factor)."
            )
    return arr.astype("float64").where((arr > 0.5) & (arr <= 1.0))


def _atmosphere(ds: xr.Dataset, option, water_vapour) -> dict:
    """Band atmosphere and water vapour: the `atmosphere` option wins over dataset variables."""
    user = _parse_atmosphere(option)
    if water_vapour is not None:
        user["water_vapour"] = water_vapour
    atm: dict = {}
    rte_source = None
    for band in ("lwir11", "lwir12"):
        for key, var in _ATMOS_KEYS.items():
            name = f"{var.split('_', 1)[1]}_{band}"
            from_ds = ds[f"{var}_{band}"].astype("float64") if f"{var}_{band}" in ds else np.nan
            value = user.get(band, {}).get(key)
            atm[name] = _as_array(value) if value is not None else from_ds
    option_has_rte = all(user.get("lwir11", {}).get(k) is not None for k in _ATMOS_KEYS)
    rte_source = ATMOSPHERE_SOURCES["option" if option_has_rte else "dataset"]
    atm["rte_source"] = rte_source
    if user.get("water_vapour") is not None:
        atm["water_vapour"] = _as_array(user["water_vapour"])
        atm["water_vapour_source"] = ATMOSPHERE_SOURCES["option"]
    else:
        atm["water_vapour"] = (
            ds["atmos_water_vapour"].astype("float64") if "atmos_water_vapour" in ds else np.nan
        )
        atm["water_vapour_source"] = ATMOSPHERE_SOURCES["dataset"]
    _check_atmosphere_ranges(atm)
    return atm


def _parse_atmosphere(option) -> dict:
    if option is None:
        return {}
    option = option.get("geoproc:atmosphere", option)
    unknown = set(option) - {"lwir11", "lwir12", "water_vapour", "source", "units"}
    if unknown:
        raise UsageError(
            f"Unknown atmosphere keys {sorted(unknown)}; use 'lwir11', 'lwir12' (each with "
            "'transmittance', 'upwelling_radiance', 'downwelling_radiance') and 'water_vapour'."
        )
    for band in ("lwir11", "lwir12"):
        sub = option.get(band, {})
        bad = set(sub) - set(_ATMOS_KEYS)
        if bad:
            raise UsageError(
                f"Unknown atmosphere keys for {band}: {sorted(bad)}; use {', '.join(_ATMOS_KEYS)}."
            )
        present = [k for k in _ATMOS_KEYS if sub.get(k) is not None]
        if present and len(present) != len(_ATMOS_KEYS):
            raise UsageError(
                f"atmosphere[{band!r}] needs all of {', '.join(_ATMOS_KEYS)}; it has {', '.join(present)}."
            )
    return option


def _check_atmosphere_ranges(atm: dict) -> None:
    limits = {
        "transmittance_lwir11": (0.0, 1.0),
        "transmittance_lwir12": (0.0, 1.0),
        "upwelling_lwir11": (0.0, 20.0),
        "upwelling_lwir12": (0.0, 20.0),
        "downwelling_lwir11": (0.0, 20.0),
        "downwelling_lwir12": (0.0, 20.0),
        "water_vapour": (0.0, 10.0),
    }
    for name, (lo, hi) in limits.items():
        value = atm[name]
        if isinstance(value, xr.DataArray) and value.chunks is not None:
            continue
        arr = np.asarray(value, dtype="float64")
        finite = arr[np.isfinite(arr)]
        if finite.size and (
            finite.min() < lo
            or finite.max() > hi
            or (name.startswith("trans") and finite.min() == 0)
        ):
            unit = (
                "g cm-2"
                if name == "water_vapour"
                else ("" if name.startswith("trans") else "W m-2 sr-1 um-1")
            )
            raise UsageError(
                f"Atmosphere {name} must lie in ({lo}, {hi}] {unit}; got {finite.min():.4g}..{finite.max():.4g}."
            )


def _as_array(value):
    return (
        value.astype("float64") if isinstance(value, xr.DataArray) else xr.DataArray(float(value))
    )


def _finite(*arrays) -> xr.DataArray:
    ok = True
    for a in arrays:
        ok = ok & np.isfinite(a if isinstance(a, xr.DataArray) else xr.DataArray(a))
    return ok


def _methods_needed(method: str, rte_ok, sw_possible: bool) -> tuple[str, ...]:
    """Methods that can be chosen somewhere: all fallbacks unless the atmosphere is known everywhere."""
    if method != "auto":
        return (method,)
    eager = not isinstance(rte_ok, xr.DataArray) or rte_ok.chunks is None
    if eager and bool(np.all(rte_ok)):
        return ("rte",)
    return ("rte", "split_window", "single_channel") if sw_possible else ("rte", "single_channel")


def _choose_method(method: str, rte_ok, sw_ok, bt11) -> xr.DataArray:
    """Per-pixel method code: the requested one, or for `auto` RTE > split-window > single-channel."""
    if method == "rte":
        if not bool(np.any(rte_ok)):
            raise UsageError(
                "method='rte' needs the lwir11 atmosphere (transmittance, upwelling, downwelling); "
                "pass atmosphere=... or use method='auto'."
            )
        choice = xr.where(rte_ok, METHOD_CODES["rte"], 0)
    elif method == "split_window":
        choice = xr.where(sw_ok, METHOD_CODES["split_window"], 0)
    elif method == "single_channel":
        choice = xr.full_like(bt11, METHOD_CODES["single_channel"], dtype="uint8")
    else:
        choice = xr.where(
            rte_ok,
            METHOD_CODES["rte"],
            xr.where(sw_ok, METHOD_CODES["split_window"], METHOD_CODES["single_channel"]),
        )
    return xr.broadcast(choice, bt11)[0]


_RUN_DEFAULTS = {
    name: prm.default
    for name, prm in inspect.signature(run).parameters.items()
    if prm.default is not inspect.Parameter.empty
}
