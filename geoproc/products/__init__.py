"""The products (`flood`, `lst`, `canopy`) and how the product stage may cut a cube for each.

`DECLARED_BLOCKING` holds the stage's declarations for the three products while their
packages do not set ``SPEC.blocking`` themselves (a SPEC's own declaration wins). Each line
says why, from what the product's run() computes:

- canopy: per-pixel yearly composites and rules, then the FAO 0.5 ha mapping unit (a disk
  average of the tree probability), so its halo is the disk's radius (``SPEC.halo``). A
  yearly composite uses every date of its year, so new dates never append: the year is
  recomputed once it gained 10 % more dates or closes (``incremental="yearly"``,
  `geoproc.products.yearly_refresh`).
- flood: DSWx tests per pixel and the reference-water occurrence per pixel over time are
  spatially local (halo 1 for the 3x3 speckle filter); the Sentinel-1 split threshold is a
  scene-wide statistic per date and its series fit is shared across dates, and flood exposes
  no option to hand that statistic in, so with ``vv``/``vh`` in the cube it runs as a whole
  tile. The U-Net's receptive field exceeds the halo, and a user reference layer is a
  whole-tile array: both run as a whole tile. Incremental in spatial blocks only (``history``):
  a new date is classified against the occurrence reference over every date up to it, read
  from the store's older `water` / `water_source`; older dates keep their classes unless
  the reference drifts (``POLICIES["flood"]``). With a ``reference_time`` window the
  reference is not the history up to the new date: recomputed in full.
- lst: every date is independent (atmosphere per date) and per pixel, except the
  residual-cloud screen's T_low, a scene percentile of clear-land temperature per date:
  a first pass over spatial blocks counts each date's clear-land BT values and takes the
  percentile of the whole scene from the counts, to the bit (``scene_statistics``), and
  the blocks get it as an option. The ``near_cloud`` QA bit needs the Fmask cloud distance
  below ``near_cloud_m``: run() gets the Fmask with a halo that wide (``halo_of``,
  ``halo_inputs``), the rest of the block without. With the near-cloud uncertainty
  on (``near_cloud_sigma_k``) the distance is unbounded: groups of dates over the whole
  tile (``local_when``). No output of a date depends on another date (``incremental``),
  so its blocks hold a few dates each, not the series (`product_stage.plan_date_windows`).
  Incremental: a new date adds steps (by date groups, over the whole tile), old ones never
  change.
"""

from __future__ import annotations

import inspect

from geoproc.products.base import Blocking, ProductSpec

DECLARED_BLOCKING: dict[str, Blocking] = {
    "canopy": Blocking("space", incremental="yearly", refresh_fraction=0.1),
    "flood": Blocking(
        "space",
        scene_wide_inputs=("vv", "vh"),
        local_options={"algorithm": "threshold", "reference": None},
        fallback="tile",
        incremental="history",
        history_outputs=("water", "water_source", "diagnostic"),
        incremental_options={"reference_time": None},
    ),
    "lst": Blocking(
        "space",
        fallback="time",
        incremental=True,
        local_when="spatially_local",
        scene_statistics="scene_statistics",
        date_options=("cloud_screen_t_low",),
        halo_of="block_halo",
        halo_inputs=("fmask",),
        work_factor=6.0,
    ),
}


def blocking_of(spec: ProductSpec) -> Blocking:
    """The product's declaration: its SPEC's, else the stage's table, else whole tile."""
    return spec.blocking or DECLARED_BLOCKING.get(spec.name) or Blocking("tile")


def stage_blocking(module, variables: tuple[str, ...], options: dict) -> str:
    """`space`, `time` or `tile` for this product module on a cube with these variables."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(module.run).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return blocking_of(module.SPEC).resolve(tuple(variables), options, defaults, module)


POLICIES = {
    "flood": (
        "spatially blocked runs (optical, threshold algorithm, reference from the history): "
        "new dates appended, each classified against the occurrence reference over every "
        "date up to and including it (computed from the store's older water/water_source "
        "plus the new water, so an appended date gets the classes a full run gives it); "
        "older dates keep their classes, as operational services never reclassify a "
        "published date (GFM, Salamon et al. 2021; OPERA DSWx). If the reference "
        "(water/dry/unknown) differs from the one the older dates were classified with on "
        "more than reference_drift_limit (default 1 %) of the pixels with a known reference, "
        "every date is recomputed; the run report gives the drift. Other configurations "
        "(Sentinel-1 vv/vh, U-Net, a user reference or reference_time): recomputed in full "
        "when a cube date is added"
    ),
    "lst": "new dates appended; older dates never recomputed (each date is independent)",
    "canopy": (
        "a yearly composite uses every date of its year: a year is computed when its first "
        "date arrives, recomputed when it has gained 10 % more dates than it was computed "
        "with, and closed (recomputed with all its dates) when a later year begins; in "
        "between the store is kept and the report says how many dates the year is behind "
        "(geoproc.products.yearly_refresh)"
    ),
}
"""What a new cube date does to each product's store, for the run report."""


def update_policy(name: str) -> str:
    return POLICIES.get(name, "recomputed in full when its inputs change")
