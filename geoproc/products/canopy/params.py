"""The canopy product's parameters as one frozen, typed object.

Why: `run()`, the output attributes and the product-store fingerprint must agree on what a
run was asked to do; one validated object they all read (odc-stac style frozen dataclass,
a docstring per field) keeps them from drifting apart. ``run(dataset, **options)`` still
takes the same keyword names and builds this object from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from geoproc.errors import UsageError

METHODS = ("metrics", "model", "rules")


@dataclass(frozen=True)
class CanopyParams:
    """What one canopy run computes and how."""

    method: Literal["metrics", "model", "rules"] = "metrics"
    """`metrics` (default: calibrated rules on per-pixel temporal statistics, any band
    subset, validated on real series), `model` (temporal CNN on twelve monthly composites of
    six HLS bands, trained on the synthetic sample archive) or `rules` (the phenology /
    spectral-trait baseline on the same composites)."""
    weights: str | None = None
    """`model` only: a directory with card + safetensors (default: the shipped weights)."""
    hemisphere: Literal["north", "south"] | None = None
    """Season alignment override; default from the latitude of the dataset's CRS."""
    latitude: float | None = None
    """Season alignment override in degrees (negative = south); not with ``hemisphere``."""
    mapping_unit_ha: float = 0.5
    """Area (hectares) over which the tree probability is averaged before the class is
    chosen, on images with a known pixel size: the FAO FRA 2020 minimum forest area
    (`mapping_unit`). 0 gives per-pixel classes; isolated pixel series are always per pixel."""
    min_clear: int = 1
    """Fewest clear observations in a year for a pixel to get a class (else no data)."""
    all_probabilities: bool = False
    """Also write ``canopy_class_probability`` (year, class, y, x)."""
    device: str | None = None
    """`model` only: torch device (default CUDA when present, else CPU)."""
    block_size: int = 256
    """Pixels per side of a processing block for eager input (memory, not results)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(
                f"canopy method {self.method!r} is unknown: use method='metrics', 'model' or 'rules'"
            )
        if (
            isinstance(self.mapping_unit_ha, bool)
            or not isinstance(self.mapping_unit_ha, int | float)
            or not 0.0 <= float(self.mapping_unit_ha) <= 100.0
        ):
            raise UsageError(
                f"mapping_unit_ha must be a number of hectares within 0..100 (got "
                f"{self.mapping_unit_ha!r}); 0 gives per-pixel classes"
            )
        if not isinstance(self.min_clear, int) or self.min_clear < 1:
            raise UsageError(f"min_clear must be >= 1 (got {self.min_clear})")
        if self.hemisphere is not None and self.latitude is not None:
            raise UsageError("pass either hemisphere= or latitude= to the canopy product, not both")
        if self.hemisphere is not None and self.hemisphere not in ("north", "south"):
            raise UsageError(f"hemisphere must be 'north' or 'south' (got {self.hemisphere!r})")
        if self.latitude is not None and not -90.0 <= float(self.latitude) <= 90.0:
            raise UsageError(f"latitude must be within -90..90 degrees (got {self.latitude})")
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise UsageError(f"block_size must be a positive integer (got {self.block_size})")

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None) -> CanopyParams:
        """Parameters from keyword options, naming any unknown option."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(
                f"unknown canopy option(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
            )
        return cls(**options)

    def as_attrs(self) -> dict[str, Any]:
        """The parameters that decide the output, as written to the store attributes."""
        out = dataclasses.asdict(self)
        for name in ("device", "block_size"):
            out.pop(name)
        if self.method != "model":
            out.pop("weights")
        return out

    def fingerprint(self) -> str:
        """sha256 of `as_attrs()`: equal for runs that give the same classes."""
        payload = json.dumps(self.as_attrs(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()
