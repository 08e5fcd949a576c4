"""The May-June 2024 river flood: stage over time and the flooded area it gives.

Modelled on the late-May / early-June 2024 floods in southern Bavaria: the river stage
rises from 14 May, peaks 22-27 May about 3 m above normal, and falls back by 8 June. A
pixel floods when its height above the river (HAND) is below the stage (the HAND flood
mapping approach, Nobre et al. 2016, Hydrol. Process. 30:320).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from geoproc.dev.sample.scene import World

DRY, PERMANENT_WATER, FLOOD_WATER = 0, 1, 2
FLOOD_CODES = {DRY: "dry", PERMANENT_WATER: "permanent_water", FLOOD_WATER: "flood_water"}

_STAGE = (
    (dt.date(2024, 5, 13), 0.0),
    (dt.date(2024, 5, 17), 1.5),
    (dt.date(2024, 5, 22), 3.0),
    (dt.date(2024, 5, 27), 3.0),
    (dt.date(2024, 6, 2), 1.2),
    (dt.date(2024, 6, 8), 0.0),
)
FLOOD_START, FLOOD_END = _STAGE[0][0], _STAGE[-1][0]


def river_stage_m(day: dt.date) -> float:
    """Water level above normal on a day (0 outside the event)."""
    x = [d.toordinal() for d, _ in _STAGE]
    return float(np.interp(day.toordinal(), x, [s for _, s in _STAGE], left=0.0, right=0.0))


def flooded(world: World, day: dt.date) -> np.ndarray:
    """Boolean mask of land under flood water on a day."""
    stage = river_stage_m(day)
    if stage <= 0:
        return np.zeros(world.landcover.shape, bool)
    return (world.hand_m < stage) & ~world.permanent_water


def flood_truth(world: World, day: dt.date) -> np.ndarray:
    """uint8 0 dry, 1 permanent water, 2 flood water."""
    out = np.zeros(world.landcover.shape, np.uint8)
    out[world.permanent_water] = PERMANENT_WATER
    out[flooded(world, day)] = FLOOD_WATER
    return out
