"""The one interface every product shares, so the CLI, the engine and analysts treat them alike.

A product module (`flood`, `lst`, `canopy`) exposes ``SPEC: ProductSpec`` and
``run(dataset, **options) -> xarray.Dataset``. ``run`` accepts any Dataset whose
variables use STAC common band names (`red`, `nir08`, `lwir11`, `vv`, ...) on dims
``(time, y, x)`` (or ``(y, x)`` for one scene), with masked pixels as NaN, and returns
the output variables described by ``SPEC.outputs`` with CF attributes set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class VariableSpec:
    """One output variable and its CF metadata."""

    name: str
    dtype: str
    units: str
    long_name: str
    fill_value: float | int | None = None
    standard_name: str | None = None
    flag_values: tuple[int, ...] | None = None
    flag_meanings: tuple[str, ...] | None = None
    flag_masks: tuple[int, ...] | None = None
    valid_range: tuple[float, float] | None = None

    def attrs(self) -> dict:
        """CF attributes for this variable (``_FillValue`` goes to the encoding)."""
        out: dict = {"units": self.units, "long_name": self.long_name}
        if self.standard_name:
            out["standard_name"] = self.standard_name
        if self.flag_values is not None:
            out["flag_values"] = np.array(self.flag_values, dtype=self.dtype)
        if self.flag_masks is not None:
            out["flag_masks"] = np.array(self.flag_masks, dtype=self.dtype)
        if self.flag_meanings is not None:
            out["flag_meanings"] = " ".join(self.flag_meanings)
        if self.valid_range is not None:
            out["valid_range"] = np.array(self.valid_range, dtype=self.dtype)
        return out


@dataclass(frozen=True)
class Blocking:
    """How the product stage may cut a cube for this product without changing its result.

    `space`: spatially local (per pixel over time, plus the spec's ``halo``): spatial blocks
    with every time step give the whole-tile bytes. `time`: each date's output depends on
    that date only (scene-wide statistics per date): groups of dates over the whole tile do.
    `tile`: run() needs the whole tile series at once (today's path).
    """

    mode: Literal["space", "time", "tile"] = "tile"
    scene_wide_inputs: tuple[str, ...] = ()
    """Inputs whose presence makes run() use scene-wide statistics (e.g. flood's per-date SAR
    split threshold): with any of them in the cube the product runs as ``fallback``."""
    local_options: dict = field(default_factory=dict)
    """Option values under which ``mode`` holds (e.g. ``{"cloud_screen": False}``); an
    option set to anything else makes the product run as ``fallback``."""
    fallback: Literal["time", "tile"] = "tile"
    incremental: bool | Literal["history", "yearly"] = False
    """True when the outputs of a date never depend on other dates (``temporal="scene"``
    only): a new cube date adds product steps without recomputing the old ones (by date
    groups). ``"history"``: a new date also depends on the older dates' stored outputs
    (``history_outputs``, e.g. flood's reference water): appended in spatial blocks by the
    product's ``append_block`` / ``append_verdict`` (`product_stage.append_with_history`).
    ``"yearly"``: one output per calendar year from every date of the year (canopy): a new
    date never appends; its year is recomputed under `geoproc.products.yearly_refresh`."""
    refresh_fraction: float = 0.1
    """``"yearly"`` only: share of new dates (of those a year was computed with) after which
    the year is recomputed before it closes (`geoproc.products.yearly_refresh`)."""
    history_outputs: tuple[str, ...] = ()
    """The stored per-date outputs of the older dates a ``"history"`` append reads."""
    incremental_options: dict = field(default_factory=dict)
    """Option values under which appending holds (e.g. ``{"reference_time": None}``); any
    other value makes a new date recompute the store in full."""
    local_when: str | None = None
    """Name of a function of the product module, ``f(options) -> bool`` (run()'s options,
    defaults filled), False where ``mode`` does not hold: for conditions ``local_options``
    cannot state (e.g. LST's near-cloud uncertainty inside its ``cloud_screen`` option)."""
    scene_statistics: str | None = None
    """Name of a function of the product module, ``f(inputs, windows, **options) -> dict``:
    run before a ``space`` run over the cores of its blocks (`windows`: ``(dates, dataset)``
    one at a time, ``dates`` the slice of `inputs`' time steps the loaded window holds;
    `inputs`: the whole cube, lazily, for its dates and metadata), it returns options for
    run() that carry scene-wide statistics into every block (e.g. LST's per-date T_low).
    Derived from the data, never part of the recorded options."""
    date_options: tuple[str, ...] = ()
    """Options from ``scene_statistics`` holding one value per cube date: a block holding
    some of the dates gets theirs (e.g. LST's ``cloud_screen_t_low``)."""
    halo_of: str | None = None
    """Name of a function of the product module, ``f(inputs, **options) -> int``: a halo
    that depends on the options and the grid, used when wider than the spec's ``halo``."""
    work_factor: float | None = None
    """Working bytes of run() per decoded input byte, where the product's own measurement
    differs from the stage's default (`product_stage.WORK_FACTOR`): sizes its blocks."""
    halo_inputs: tuple[str, ...] = ()
    """The only inputs that need the ``halo_of`` halo (e.g. LST's ``fmask`` for the cloud
    distance): blocks are read for their core, and run() gets these over the block with
    its halo as ``halo_context=(dataset, core slices)``, so the per-pixel work is not
    repeated on the halo."""

    def resolve(
        self, variables: tuple[str, ...], options: dict, defaults: dict, module=None
    ) -> str:
        """The mode for a cube with these variables and run() options (``defaults``: run()'s
        own defaults, for the options not given; ``module``: the product's, for
        ``local_when``: without it such a declaration takes its ``fallback``)."""
        if self.mode == "tile":
            return "tile"
        if any(v in variables for v in self.scene_wide_inputs):
            return self.fallback
        given = {**defaults, **options}  # an option run() no longer has cannot break locality
        if any(_differs(given[k], v) for k, v in self.local_options.items() if k in given):
            return self.fallback
        if self.local_when and (module is None or not getattr(module, self.local_when)(options)):
            return self.fallback
        return self.mode

    def appends(self, mode: str, options: dict, variables: tuple[str, ...] = ()) -> bool:
        """Whether a store of this product run in ``mode`` may take new dates by appending
        (never with a scene-wide input, even where a caller forces the mode). Independent
        dates (``incremental=True``) append by date groups whether the store was written in
        ``time`` or ``space`` blocks: either gives every date its whole-tile output."""
        if self.incremental == "history":
            wanted: tuple[str, ...] = ("space",)
        elif self.incremental == "yearly":
            wanted = ("space", "time", "tile")  # the year is recomputed whatever the mode
        else:
            wanted = ("time", "space") if self.incremental else ()
        if mode not in wanted:
            return False
        if self.incremental == "history" and any(v in variables for v in self.scene_wide_inputs):
            return False
        return not any(
            _differs(options[k], v) for k, v in self.incremental_options.items() if k in options
        )


def _differs(value, local) -> bool:
    """`value` is not the option value that keeps a product local (arrays never compare ==)."""
    if local is None or value is None:
        return value is not local
    try:
        return bool(value != local)
    except (TypeError, ValueError):
        return True


@dataclass(frozen=True)
class ProductSpec:
    """What a product needs and what it makes."""

    name: str
    """Product name used on the CLI and in store paths (`flood`, `lst`, `canopy`)."""
    version: str
    """Algorithm version, written to the store attributes."""
    method: str
    """One line naming the method and its sources."""
    required_inputs: tuple[str, ...]
    """Common band names that must be present."""
    optional_inputs: tuple[str, ...] = ()
    """Common band names used when present."""
    temporal: Literal["scene", "series"] = "scene"
    """`scene`: one output per input date; `series`: one output per period (e.g. year)."""
    outputs: tuple[VariableSpec, ...] = field(default_factory=tuple)
    """Output variables."""
    halo: int = 0
    """Pixels of context each side a spatial window needs (0 for per-pixel methods)."""
    blocking: Blocking | None = None
    """How the product stage may cut the cube. None: not declared here; the stage looks in
    `geoproc.products.DECLARED_BLOCKING`, else runs the whole tile (today's behaviour)."""

    def output(self, name: str) -> VariableSpec:
        for v in self.outputs:
            if v.name == name:
                return v
        raise KeyError(name)


def apply_output_attrs(ds: xr.Dataset, spec: ProductSpec, params: dict | None = None) -> xr.Dataset:
    """Set CF attributes and fill values on a product Dataset from its spec."""
    for v in spec.outputs:
        if v.name not in ds:
            continue
        ds[v.name].attrs.update(v.attrs())
        if v.fill_value is not None:
            ds[v.name].encoding["_FillValue"] = v.fill_value
    ds.attrs.update(
        {
            "product": spec.name,
            "algorithm_version": spec.version,
            "method": spec.method,
            "parameters": _jsonable(params or {}),
        }
    )
    return ds


def _jsonable(params: dict) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)
