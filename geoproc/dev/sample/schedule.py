"""When each sensor looks at the region in 2024: revisit, orbit and overpass time.

Sentinel-2A/B: 10-day repeat each, 5 days together, morning descending pass (10:30 mean
local solar time); Landsat 8/9: 16-day repeat each, 8 days together, ~10:10 local solar
time; Sentinel-1A (the only S1 in 2024): 12-day repeat, one ascending (~17:05 UTC) and one
descending (~05:25 UTC) relative orbit over the region, so 6 days between looks.
Mission facts: ESA Sentinel-2 and Sentinel-1 user handbooks, USGS Landsat 9 data users
handbook. UTC = local solar time - longitude / 15 h.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from geoproc.dev.sample.region import CENTER_LON

YEAR = 2024
START = dt.date(YEAR, 1, 1)
END = dt.date(YEAR, 12, 31)


@dataclass(frozen=True)
class Acquisition:
    """One overpass over the whole region (every granule of it gets an item)."""

    collection: str
    key: int
    """Unique integer per acquisition (seeds its clouds, speckle, atmosphere)."""
    platform: str
    """STAC platform (`sentinel-2a`, `landsat-9`, `sentinel-1a`, ...)."""
    datetime: dt.datetime
    """Centre of the acquisition (UTC)."""
    relative_orbit: int
    """Relative orbit (S1/S2) or WRS-2 path (Landsat)."""
    absolute_orbit: int
    orbit_state: str
    """`ascending` or `descending`."""

    @property
    def date(self) -> dt.date:
        return self.datetime.date()

    @property
    def doy(self) -> int:
        return self.datetime.timetuple().tm_yday


def _utc_for_local_solar(day: dt.date, hours_local: float, jitter_s: int) -> dt.datetime:
    utc_hours = hours_local - CENTER_LON / 15.0
    seconds = int(round(utc_hours * 3600)) + jitter_s
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def _series(first: dt.date, every_days: int) -> list[dt.date]:
    out, day = [], first
    while day <= END:
        out.append(day)
        day += dt.timedelta(days=every_days)
    return out


def acquisitions() -> list[Acquisition]:
    """All acquisitions of 2024, sorted by time; the same for every seed (orbits are not random)."""
    acq: list[Acquisition] = []
    # (collection, platform, first date, repeat days, local solar hour or UTC hour, orbit, abs-orbit base, per-day, state)
    plans = (
        (
            "HLSS30_2.0",
            "sentinel-2a",
            dt.date(2024, 1, 3),
            10,
            10.5,
            65,
            44560,
            14.3,
            "descending",
            True,
        ),
        (
            "HLSS30_2.0",
            "sentinel-2b",
            dt.date(2024, 1, 8),
            10,
            10.5,
            65,
            35990,
            14.3,
            "descending",
            True,
        ),
        (
            "HLSL30_2.0",
            "landsat-8",
            dt.date(2024, 1, 6),
            16,
            10 + 10 / 60,
            192,
            0,
            0.0,
            "descending",
            True,
        ),
        (
            "HLSL30_2.0",
            "landsat-9",
            dt.date(2024, 1, 14),
            16,
            10 + 10 / 60,
            192,
            0,
            0.0,
            "descending",
            True,
        ),
        (
            "sentinel-1-rtc",
            "sentinel-1a",
            dt.date(2024, 1, 4),
            12,
            17 + 5 / 60,
            117,
            52040,
            15.0 - 1 / 6,
            "ascending",
            False,
        ),
        (
            "sentinel-1-rtc",
            "sentinel-1a",
            dt.date(2024, 1, 10),
            12,
            5 + 25 / 60,
            168,
            52128,
            15.0 - 1 / 6,
            "descending",
            False,
        ),
    )
    for n, (
        coll,
        platform,
        first,
        repeat,
        hour,
        orbit,
        abs0,
        per_day,
        state,
        local_solar,
    ) in enumerate(plans):
        for i, day in enumerate(_series(first, repeat)):
            jitter = (i * 37 + n * 11) % 23 - 11
            if local_solar:
                when = _utc_for_local_solar(day, hour, jitter)
            else:
                when = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
                    seconds=int(hour * 3600) + jitter
                )
            absolute = abs0 + int(round((day - first).days * per_day)) if per_day else 0
            acq.append(Acquisition(coll, n * 1000 + i, platform, when, orbit, absolute, state))
    return sorted(acq, key=lambda a: (a.datetime, a.collection))
