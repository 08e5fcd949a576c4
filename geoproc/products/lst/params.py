"""The LST product's parameters as one frozen, typed object.

`run()` builds it from its keyword options (so ``run(ds, method="rte")`` keeps working), and
the same object writes the output ``parameters`` attribute and the fingerprint payload
(`as_attrs`), so what ran, what is recorded and what decides a rerun cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from geoproc.catalog.sensors import DEFAULT_FMASK_MASKED, FMASK_BITS
from geoproc.errors import UsageError
from geoproc.products.lst.cloud_screen import CloudScreen
from geoproc.products.lst.emissivity import SURFACE_CLASSES
from geoproc.products.lst.rte import AtmosphereUncertainty, SceneAtmosphereVariability
from geoproc.products.lst.single_channel import DEFAULT_DEWPOINT_DEPRESSION

METHODS = ("auto", "rte", "split_window", "single_channel")


@dataclass(frozen=True)
class LSTParams:
    """Everything that changes the LST output besides the dataset."""

    method: str = "auto"
    """``auto`` (RTE > split-window > single-channel per pixel) or one of them."""
    atmosphere: dict | None = None
    """Band atmosphere in the STAC ``geoproc:atmosphere`` shape; wins over ``atmos_*`` variables."""
    water_vapour: float | xr.DataArray | None = None
    """Total column water vapour, g cm-2 (single-channel / split-window)."""
    emissivity: float | xr.DataArray | dict | None = None
    """Emissivity replacing NDVI-THM (a value, a map, or ``{"lwir11": ..., "lwir12": ...}``)."""
    emissivity_uncertainty: float = 0.01
    """One-sigma error of a provided emissivity."""
    thermal_constants: str | dict = "auto"
    """Sensor key of `planck.THERMAL_CONSTANTS`, a {band: ThermalBand} map, or ``auto`` (the
    dataset's ``spacecraft``/``platform``/``thermal_k1`` attributes, else Landsat 8)."""
    fmask_masked: tuple[str, ...] = DEFAULT_FMASK_MASKED
    """Fmask bits that mask a pixel."""
    ndvi_soil: float = 0.2
    """NDVI-THM bare-soil threshold (Sobrino et al. 2008)."""
    ndvi_vegetation: float = 0.5
    """NDVI-THM full-vegetation threshold."""
    atmosphere_uncertainty: AtmosphereUncertainty = field(default_factory=AtmosphereUncertainty)
    """Error of a per-pixel atmosphere map, for error propagation."""
    scene_variability: SceneAtmosphereVariability = field(
        default_factory=SceneAtmosphereVariability
    )
    """Spread of the atmosphere inside a scene, used when the atmosphere is one value per scene."""
    emissivity_class_sigma: tuple[tuple[str, float], ...] = ()
    """NDVI-THM emissivity sigma per class name (``(("vegetation", 0.01), ...)``) replacing
    `emissivity.CLASS_UNCERTAINTY` for those classes; empty keeps the shipped values."""
    dewpoint_depression_k: float = DEFAULT_DEWPOINT_DEPRESSION
    """Mean brightness temperature minus surface dew point (K) that sets the water vapour when
    none is known (`single_channel.climatological_water_vapour`)."""
    cloud_screen: CloudScreen | None = field(default_factory=CloudScreen)
    """Residual-cloud screen and near-cloud uncertainty; None turns it off."""
    usgs_emissivity: bool = False
    """Use the Landsat C2 L2 ``st_emis`` layer (ASTER GED-based ST_EMIS) as the lwir11
    emissivity instead of NDVI-THM (the same name as `landsat_c2.load_landsat_c2_l2`'s)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(
                f"Unknown LST method {self.method!r}; use one of {', '.join(METHODS)}."
            )
        if not -1.0 < self.ndvi_soil < self.ndvi_vegetation < 1.0:
            raise UsageError(
                f"NDVI thresholds must satisfy -1 < ndvi_soil < ndvi_vegetation < 1; got "
                f"ndvi_soil={self.ndvi_soil}, ndvi_vegetation={self.ndvi_vegetation} "
                "(Sobrino 2008: 0.2, 0.5)."
            )
        unknown = [b for b in self.fmask_masked if b not in FMASK_BITS]
        if unknown:
            raise UsageError(
                f"Unknown Fmask bits {unknown}; use names from {', '.join(FMASK_BITS)}."
            )
        names = set(SURFACE_CLASSES.values())
        bad = [n for n, v in self.emissivity_class_sigma if n not in names or not 0 <= v < 0.5]
        if bad:
            raise UsageError(
                f"emissivity_class_sigma: unknown class or sigma outside [0, 0.5) for {bad}; "
                f"use class names {', '.join(sorted(names))}."
            )
        if not -10.0 <= float(self.dewpoint_depression_k) <= 60.0:
            raise UsageError(
                f"dewpoint_depression_k must lie in [-10, 60] K; got {self.dewpoint_depression_k}."
            )
        if not 0.0 <= float(self.emissivity_uncertainty) < 0.5:
            raise UsageError(
                f"emissivity_uncertainty must lie in [0, 0.5); got {self.emissivity_uncertainty}."
            )

    @classmethod
    def from_options(cls, base: LSTParams | None = None, **options) -> LSTParams:
        """Parameters from `run()`'s keyword options, over `base` (defaults when None)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise UsageError(f"Unknown LST options {unknown}; use {', '.join(sorted(names))}.")
        if "atmosphere" in options:
            options["atmosphere"] = _load_atmosphere(options["atmosphere"])
        if "cloud_screen" in options:
            options["cloud_screen"] = _cloud_screen(options["cloud_screen"])
        if options.get("atmosphere_uncertainty", 0) is None:
            options["atmosphere_uncertainty"] = AtmosphereUncertainty()
        if "fmask_masked" in options:
            options["fmask_masked"] = tuple(options["fmask_masked"])
        return dataclasses.replace(base or cls(), **options)

    def as_attrs(self) -> dict:
        """JSON-able parameters for the output attributes and the store fingerprint."""
        return {
            "method": self.method,
            "thermal_constants": self.thermal_constants
            if isinstance(self.thermal_constants, str)
            else "custom",
            "ndvi_soil": self.ndvi_soil,
            "ndvi_vegetation": self.ndvi_vegetation,
            "atmosphere": self.atmosphere,
            "water_vapour": self.water_vapour
            if isinstance(self.water_vapour, (int, float))
            else None,
            "emissivity": "option" if self.emissivity is not None else None,
            "emissivity_uncertainty": self.emissivity_uncertainty,
            "fmask_masked": list(self.fmask_masked),
            "atmosphere_uncertainty": dataclasses.asdict(self.atmosphere_uncertainty),
            "scene_variability": dataclasses.asdict(self.scene_variability),
            "emissivity_class_sigma": dict(self.emissivity_class_sigma),
            "dewpoint_depression_k": self.dewpoint_depression_k,
            "cloud_screen": dataclasses.asdict(self.cloud_screen)
            if self.cloud_screen is not None
            else None,
            "usgs_emissivity": self.usgs_emissivity,
        }


def _load_atmosphere(option) -> dict | None:
    """A dict, or the JSON file a path names (the STAC ``geoproc:atmosphere`` shape)."""
    if option is None or isinstance(option, dict):
        return option
    if isinstance(option, (str, Path)):
        path = Path(option)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise UsageError(
                f"Atmosphere file {str(path)!r} does not exist; pass an existing JSON file."
            ) from exc
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"Atmosphere file {str(path)!r} is not valid JSON ({exc.msg}); fix the file."
            ) from exc
    raise UsageError(
        "atmosphere must be a dict or a JSON file path like the STAC 'geoproc:atmosphere' property."
    )


def _cloud_screen(option) -> CloudScreen | None:
    if option is True:
        return CloudScreen()
    if option is False or option is None:
        return None
    if isinstance(option, CloudScreen):
        return option
    if isinstance(option, dict):
        fields = {f.name for f in dataclasses.fields(CloudScreen)}
        unknown = sorted(set(option) - fields)
        if unknown:
            raise UsageError(
                f"Unknown cloud_screen fields {unknown}; use {', '.join(sorted(fields))}."
            )
        return CloudScreen(**option)
    raise UsageError(
        f"cloud_screen must be True, False, a CloudScreen or a dict of its fields; got {option!r}."
    )
