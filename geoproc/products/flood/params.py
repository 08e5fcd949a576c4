"""The flood product's parameters as one frozen, typed object.

Why one object: `run()`, the output attributes and the run fingerprint must all see the same
values, including the defaults a user never typed; a dataclass with a docstring per field
(the odc-stac `load` parameters are the model) is the one place where they are named,
checked and turned into JSON. `run(dataset, **options)` still accepts the keyword names,
and JSON requests give nested options as dicts (`FloodParams.from_options`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from geoproc.errors import UsageError
from geoproc.products.flood.double_bounce import DoubleBounceOptions
from geoproc.products.flood.dswx import DEFAULT_FMASK_MASKED_BITS
from geoproc.products.flood.sar import SplitOptions

ALGORITHMS = ("threshold", "unet")
SAR_UNITS = ("auto", "db", "linear")


@dataclass(frozen=True)
class FloodParams:
    """Every option of `geoproc.products.flood.run` (the reference layer is data, not here)."""

    algorithm: str = "threshold"
    """`threshold` (DSWx + split-based SAR + fusion) or `unet` (needs ``model``)."""
    reference_time: tuple[str, str] | None = None
    """(start, end) of the period whose water is the reference (e.g. the dry season)."""
    reference_min_frequency: float = 0.5
    """Share of valid looks a pixel must be water in to be reference water."""
    reference_min_observations: int = 2
    """Fewer valid looks than this: the reference (and the history prior) is unknown."""
    optical_weight: float = 0.6
    """Share of the optical opinion where optical and SAR both see a pixel."""
    fmask_masked_bits: tuple[str, ...] = DEFAULT_FMASK_MASKED_BITS
    """Fmask bits whose pixels are no data for the optical tests."""
    sar_units: str = "auto"
    """`db`, `linear` or `auto` (any negative value means dB)."""
    speckle_window: int = 3
    """Edge of the median window applied to SAR dB before any fit (1 turns it off)."""
    split_options: SplitOptions = field(default_factory=SplitOptions)
    """Tile selection and plausibility rules of the SAR split (`flood_sar.SplitOptions`)."""
    sar_share_fit: bool = True
    """Dates without their own SAR split may borrow the series' fit."""
    sar_max_shift_db: float = 2.0
    """A date whose scene median is this much darker than the series' never borrows."""
    sar_history_prior: bool = True
    """Weigh SAR evidence with each pixel's optical water history."""
    double_bounce: DoubleBounceOptions | None = field(default_factory=DoubleBounceOptions)
    """Flooded forest / built-up rules; None turns the test off."""
    sar_min_drop_db: float | None = 3.0
    """New SAR water over land must be this much darker than its reference (None: no check)."""
    model: str | None = None
    """Path of a flood model card for ``algorithm="unet"``."""
    mc_samples: int = 8
    """Monte-Carlo dropout samples of the U-Net."""
    device: str | None = None
    """Torch device for the U-Net (None: CUDA when present)."""
    reference_drift_limit: float = 0.01
    """Share of the pixels with a known reference whose reference (water / dry / unknown) may
    change when dates are appended to a store before the run recomputes every date instead
    (`flood_incremental`); older dates keep their classes below it."""

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UsageError(
                f"unknown flood algorithm {self.algorithm!r}; pass algorithm= one of {', '.join(ALGORITHMS)}"
            )
        if self.sar_units not in SAR_UNITS:
            raise UsageError(
                f"sar_units={self.sar_units!r} is not known; pass one of {', '.join(SAR_UNITS)}"
            )
        if not 0.0 <= float(self.optical_weight) <= 1.0:
            raise UsageError(f"optical_weight={self.optical_weight} must lie in [0, 1]")
        if int(self.speckle_window) < 1:
            raise UsageError(f"speckle_window={self.speckle_window} must be 1 or more")
        if int(self.mc_samples) < 1:
            raise UsageError(f"mc_samples={self.mc_samples} must be 1 or more")
        if not 0.0 <= float(self.reference_drift_limit) <= 1.0:
            raise UsageError(
                f"reference_drift_limit={self.reference_drift_limit} must lie in [0, 1]"
            )
        if not 0.0 < float(self.reference_min_frequency) <= 1.0:
            raise UsageError(
                f"reference_min_frequency={self.reference_min_frequency} must lie in (0, 1]"
            )

    @classmethod
    def from_options(cls, base: FloodParams | None = None, **options: Any) -> FloodParams:
        """Parameters from keyword options (as `run` and JSON requests give them).

        Unknown names raise a `UsageError` listing the known ones; ``double_bounce`` may be
        True/False or a dict, ``split_options`` a dict, sequences become tuples.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(
                f"unknown flood option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(options)
        if "double_bounce" in values:
            values["double_bounce"] = _double_bounce(values["double_bounce"])
        if "split_options" in values:
            values["split_options"] = _split_options(values["split_options"])
        for name in ("fmask_masked_bits", "reference_time"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return dataclasses.replace(base or cls(), **values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values of every field (the output attributes and the fingerprint)."""
        out = dataclasses.asdict(self)
        out["double_bounce"] = out["double_bounce"] if self.double_bounce is not None else False
        return out


def _double_bounce(value: Any) -> DoubleBounceOptions | None:
    if value is None or value is False:
        return None
    if value is True:
        return DoubleBounceOptions()
    if isinstance(value, DoubleBounceOptions):
        return value
    if isinstance(value, dict):
        try:
            return DoubleBounceOptions(**value)
        except TypeError as exc:
            known = ", ".join(f.name for f in dataclasses.fields(DoubleBounceOptions))
            raise UsageError(
                f"double_bounce options {sorted(value)} are not all known; use keys from: {known}"
            ) from exc
    raise UsageError(
        f"double_bounce must be true, false or a dict of options, got {type(value).__name__}"
    )


def _split_options(value: Any) -> SplitOptions:
    if value is None:
        return SplitOptions()
    if isinstance(value, SplitOptions):
        return value
    if isinstance(value, dict):
        try:
            return SplitOptions(**value)
        except TypeError as exc:
            known = ", ".join(f.name for f in dataclasses.fields(SplitOptions))
            raise UsageError(
                f"split_options {sorted(value)} are not all known; use keys from: {known}"
            ) from exc
    raise UsageError(f"split_options must be a dict of options, got {type(value).__name__}")
