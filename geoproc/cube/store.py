"""Cube stores: one Zarr store per tile, template first, then one time step at a time.

Format: `geoproc.zarr_layout` (Zarr v2, zstd with frame checksums, CF ``grid_mapping``), so
GDAL/QGIS open a variable as ``ZARR:"{store}":/{variable}``. Stores of the previous layout
(Zarr v3) are read, verified and extended in their own format (every open auto-detects).

Layout: ``{out}/cubes/{tile}.zarr`` (contract in ``geoproc.cube.assemble``), lock next to it at
``{out}/cubes/{tile}.zarr.lock``.

Chunking - ``(time=1, y=512, x=512)`` for images, 4096 along time for 1-D variables:
  * one time step owns its chunks outright, so a step is written with whole-chunk writes
    (no read-modify-write), appending a date never touches an older chunk, and a crash
    can only leave the step being written half done - which ``time_complete`` says and
    the next run rewrites;
  * per-scene products read a 1024 x 1024 tile date as 4 chunks of 512 KiB (int16);
  * per-pixel time series read a 512 x 512 block across N dates as N chunks: each is
    one object of ~0.2-0.5 MiB compressed, large enough for object stores and small
    enough that a time-series model over a pixel block stays in memory. Rechunking to
    long time chunks is cheaper later, offline, than rewriting shared chunks on every
    append now.

Crash safety (the pangeo-forge "template first" pattern, Zarr v3 spec): (1) the layout -
array metadata for the full time axis, coordinates, attributes, consolidated metadata -
is written before any data; rerunning it with the same inputs writes the same bytes;
(2) each step's chunks are written, then its ``time_complete`` entry is set. A rerun skips
complete steps and rewrites the rest, so a build killed at any point and rerun gives the
bytes of an uninterrupted build. Two builds on one store are serialised by a lock object
(`geoproc.store_lock`: exclusive create on disk, conditional PUT on S3, released only by
its owner); a lock left by a dead process on this host is taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr

from geoproc import __version__, storage, zarr_layout
from geoproc.catalog.search import TimeStep
from geoproc.catalog.sensors import FMASK_BITS, SCL_CLASSES
from geoproc.cube.assemble import ATMOS_VARIABLES, CubeOptions, atmosphere_of, read_step
from geoproc.cube.time_axis import reconcile_time_axis, source_versions
from geoproc.errors import StoreError
from geoproc.grid import Tile

log = logging.getLogger(__name__)

CHUNK_YX = 512
CHUNK_TIME_1D = 4096
LAYOUT_VERSION = 1
_INT16_FILL = -32768


@dataclass(frozen=True)
class VariableEncoding:
    """How one variable is packed on disk."""

    dtype: str
    fill: float | int
    scale: float = 1.0
    offset: float = 0.0
    attrs: dict = field(default_factory=dict)

    @property
    def packed(self) -> bool:
        return np.dtype(self.dtype).kind in "iu" and (self.scale != 1.0 or self.offset != 0.0)


def variable_encoding(name: str, *, sar_db: bool = False) -> VariableEncoding:
    """The on-disk encoding and CF attributes of a cube variable."""
    if name in ("lwir11", "lwir12"):
        return VariableEncoding(
            "int16", _INT16_FILL, 0.01, 273.15,
            {"units": "K", "standard_name": "toa_brightness_temperature",
             "long_name": f"top-of-atmosphere brightness temperature ({name})"},
        )  # fmt: skip
    if name in ("vv", "vh"):
        units = "dB" if sar_db else "1"
        return VariableEncoding(
            "float32",
            np.nan,
            attrs={
                "units": units,
                "long_name": f"terrain-corrected gamma0 backscatter, {name.upper()} polarisation",
            },
        )
    if name == "fmask":
        return VariableEncoding(
            "uint8", 255,
            attrs={"long_name": "HLS Fmask quality bits",
                   "flag_masks": [1 << b for b in FMASK_BITS.values()] + [192],
                   "flag_meanings": " ".join(list(FMASK_BITS) + ["aerosol_level"]),
                   "geoproc:fill_value": 255},
        )  # fmt: skip
    if name == "scl":
        return VariableEncoding(
            "uint8", 0,
            attrs={"long_name": "Sentinel-2 scene classification",
                   "flag_values": list(SCL_CLASSES), "flag_meanings": " ".join(SCL_CLASSES.values()),
                   "geoproc:fill_value": 0},
        )  # fmt: skip
    if name.startswith("st_"):  # Landsat C2 L2 surface temperature layers (hcatalog)
        from geoproc.cube.assemble import band_attrs

        return VariableEncoding("float32", np.nan, attrs=band_attrs(name))
    if name.startswith("atmos_"):
        units = (
            "g cm-2"
            if name.endswith("water_vapour")
            else ("1" if "transmittance" in name else "W m-2 sr-1 um-1")
        )
        return VariableEncoding(
            "float32", np.nan, attrs={"units": units, "long_name": name.replace("_", " ")}
        )
    return VariableEncoding(
        "int16", _INT16_FILL, 1e-4, 0.0,
        {"units": "1", "standard_name": "surface_bidirectional_reflectance",
         "long_name": f"surface reflectance ({name})"},
    )  # fmt: skip


def pack(values: np.ndarray, enc: VariableEncoding) -> np.ndarray:
    """Physical float values (NaN = missing) to the stored numbers.

    Works in float32 in place: for the packed encodings here (int16, scale >= 1e-4,
    |value| < 2**15 x scale) float32 carries the value to within 0.01 of an integer step,
    so rounding gives the same integers as a float64 round trip at a third of the
    memory traffic (the write path spent most of its time here).
    """
    if np.dtype(enc.dtype).kind == "f":
        return values.astype(enc.dtype, copy=False)
    if values.dtype.kind in "iu" and not enc.packed:
        return values.astype(enc.dtype, copy=False)
    info = np.iinfo(enc.dtype)
    missing = ~np.isfinite(values)
    raw = np.subtract(values, np.float32(enc.offset), dtype=np.float32)
    raw *= np.float32(1.0 / enc.scale)
    np.rint(raw, out=raw)
    np.clip(raw, info.min + 1, info.max, out=raw)
    raw[missing] = 0
    out = raw.astype(enc.dtype)
    out[missing] = enc.fill
    return out


def cube_location(out: str, tile_id: str) -> storage.Location:
    return storage.parse_url(out).join("cubes", f"{tile_id}.zarr")


@dataclass
class TileBuild:
    """What one tile's build did (part of the run record)."""

    tile: str
    url: str
    steps_total: int = 0
    steps_written: list[str] = field(default_factory=list)
    steps_skipped: int = 0
    steps_refused: list[dict] = field(default_factory=list)
    asset_errors: list[dict] = field(default_factory=list)
    steps_repaired: list[dict] = field(default_factory=list)
    """Complete steps found damaged by verification and rewritten from their sources."""
    steps_damaged: list[dict] = field(default_factory=list)
    """Damaged steps this run could not rewrite (their items are outside this search)."""
    metadata_restored: list[str] = field(default_factory=list)


def build_tile_store(
    out: str,
    tile: Tile,
    steps: Sequence[TimeStep],
    *,
    band_names: Sequence[str],
    qa_vars: Sequence[str],
    options: CubeOptions,
    parameters: dict,
    batch_size: int = 2,
    verify: str = "quick",
) -> TileBuild:
    """Create or extend the tile's store so it holds every step, then write missing steps.

    Complete steps are verified first (`geoproc.cube.verify`, ``verify`` = quick or
    full); damaged ones are rewritten from this search's items and listed in the record.
    """
    from geoproc.cube.verify import check_level

    check_level(verify)
    location = cube_location(out, tile.id)
    record = TileBuild(tile.id, location.url)
    damaged: dict[int, list[str]] = {}
    with store_lock(location):
        storage.remove_partial_writes(location)  # orphans of a killed build
        store = storage.zarr_store(location)
        record.metadata_restored = _restore_lost_metadata(location, [*band_names, *qa_vars])
        existing = _read_existing(store)
        if existing is not None:
            _check_compatible(existing, tile, band_names, qa_vars, location)
            if zarr_layout.store_format(location) != zarr_layout.ZARR_FORMAT:
                log.warning(
                    "%s is in the previous Zarr v3 layout, which GDAL/QGIS cannot open; it is "
                    "extended in that layout. Delete it (or use a new --out) and rerun to "
                    "rebuild it GDAL-readable.", location.url,
                )  # fmt: skip
            damaged = _verify_complete(location, existing, [*band_names, *qa_vars], verify)
            # late and reprocessed granules (geoproc.cube.time_axis, by hcatalog)
            plan = reconcile_time_axis(existing, steps)
            steps, existing["complete"], refused = plan.steps, plan.complete, plan.refused
            record.steps_refused = refused
            if plan.rewritten:
                log.info("%s: rewriting %s", location.url, plan.rewritten)
        record.steps_total = len(steps)
        complete = existing["complete"] if existing is not None else np.zeros(0, bool)
        same_axis = existing is not None and [s.key for s in steps] == existing["keys"]
        attrs = _root_attrs(tile, steps, options, parameters)
        if not (same_axis and existing["attrs"] == attrs):
            _write_layout(store, tile, steps, band_names, qa_vars, options, attrs, existing)
        complete = np.concatenate(
            [complete[: len(steps)], np.zeros(max(0, len(steps) - len(complete)), bool)]
        )
        todo = [i for i in range(len(steps)) if not complete[i] and steps[i].collection]
        record.steps_skipped = len(steps) - len(todo)
        for i, reasons in sorted(damaged.items()):
            entry = {"time": str(steps[i].time), "platform": steps[i].platform, "damage": reasons}
            if i in todo:
                record.steps_repaired.append(entry)
            else:
                record.steps_damaged.append(entry)
        if damaged:
            log.warning("%s: %d damaged step(s) will be rewritten: %s", location.url,
                        len(record.steps_repaired), record.steps_repaired)  # fmt: skip
            # Not complete until rewritten: a crash during the repair must not leave the
            # damaged steps marked complete.
            group = zarr.open_group(store, mode="r+", use_consolidated=False)
            group["time_complete"][:] = complete
        if todo:
            # A crash between the attribute write and consolidation leaves the layout
            # current but the consolidated copy stale: refresh it (same bytes if current).
            _consolidate(store)
            writer = _StepWriter(store, [*band_names, *qa_vars], complete)

            # Pipeline: `batch_size` threads read, mask and pack upcoming steps while this
            # thread writes the finished one in time order: batch_size steps in flight plus
            # the one being written (packed int16/uint8, half the size of the float values).
            def prepare(i: int) -> tuple[dict[str, np.ndarray], list[dict]]:
                return _prepare_step(steps[i], tile, band_names, qa_vars, options)

            with ThreadPoolExecutor(max_workers=batch_size) as pool:
                pending: deque = deque()
                queue = iter(todo)
                # The first step runs alone: it fills the per-tile caches of the reader
                # (source-to-tile pixel maps, ~80 MiB of transient index arrays per 1024²
                # tile) once, instead of in every thread at the same moment (the peak).
                first = next(queue)
                pending.append((first, pool.submit(prepare, first)))
                pending[0][1].result()
                for i in itertools.islice(queue, batch_size - 1):
                    pending.append((i, pool.submit(prepare, i)))
                try:
                    while pending:
                        i, future = pending.popleft()
                        packed, errors = future.result()
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending.append((nxt, pool.submit(prepare, nxt)))
                        writer.write(i, packed)
                        record.steps_written.append(f"{steps[i].time}/{steps[i].platform}")
                        record.asset_errors.extend(
                            {**e, "time": str(steps[i].time)} for e in errors
                        )
                        del packed
                finally:
                    writer.flush()  # the last written step's data is complete: mark it
    return record


def _restore_lost_metadata(location: storage.Location, variables: Sequence[str]) -> list[str]:
    """Put back array metadata that a store lost while its chunks remain (see verify)."""
    from geoproc.cube.verify import missing_metadata, restore_metadata

    fs, path = storage.filesystem(location)
    if zarr_layout.store_format(location) is None:
        return []
    try:
        group = zarr.open_group(storage.zarr_store(location), mode="r", use_consolidated=False)
        layout_version = group.attrs.get("geoproc:layout_version")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        return []
    if layout_version is None:
        return []  # a layout write was interrupted: `_read_existing` starts over
    lost = [v for v in missing_metadata(location, variables) if fs.exists(f"{path}/{v}")]
    return restore_metadata(location, lost) if lost else []


def _verify_complete(location, existing: dict, variables, level: str) -> dict[int, list[str]]:
    """Damaged complete steps (index -> reasons); they are marked incomplete in `existing`."""
    from geoproc.cube.verify import verify_store

    report = verify_store(location, complete=existing["complete"], variables=variables, level=level)
    if report.damaged:
        complete = existing["complete"].copy()
        complete[list(report.damaged)] = False
        existing["complete"] = complete
    return report.damaged


def _prepare_step(
    step: TimeStep, tile: Tile, band_names, qa_vars, options: CubeOptions
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """One step read, masked and packed to its stored dtypes (runs on a reader thread)."""
    data = read_step(step, tile, band_names, options)
    shape = tile.shape
    packed: dict[str, np.ndarray] = {}
    for name in band_names:
        enc = variable_encoding(name, sar_db=options.sar_db)
        values = data.bands.pop(name, None)
        if values is None:
            packed[name] = np.full(shape, enc.fill, enc.dtype)
        else:
            packed[name] = pack(values, enc)
        del values
    for name in qa_vars:
        enc = variable_encoding(name)
        packed[name] = np.asarray(data.qa.get(name, np.full(shape, enc.fill, np.uint8)), np.uint8)
    return packed, data.errors


class _StepWriter:
    """Writes whole time steps: every chunk of every variable of a step in one event-loop call.

    Why not ``group[name][i] = ...`` per variable: each of those is a separate blocking
    round trip through zarr's event loop (plus a metadata read to open the array), so the
    chunks of one variable are encoded while the others wait. Gathering all of them lets
    zarr encode and store a step's 4 x n_variables chunks concurrently. Arrays are opened
    once per build. Empty chunks are written too, so a complete step has every chunk
    object and `geoproc.cube.verify` can tell a lost chunk from an all-fill one.
    """

    def __init__(self, store, names: Sequence[str], complete: np.ndarray) -> None:
        group = zarr.open_group(store, mode="r+", use_consolidated=False)
        config = {"write_empty_chunks": True}
        self._arrays = {n: group[n]._async_array.with_config(config) for n in names}
        self._marker = group["time_complete"]._async_array
        self._flags = np.asarray(complete, bool).copy()
        self._unmarked: int | None = None

    def write(self, i: int, packed: dict[str, np.ndarray]) -> None:
        """Write step i; mark the previous step complete in the same call.

        The previous step's data finished in an earlier call, so its marker may travel
        with this step's chunks: one event-loop round trip per step instead of two. A
        kill before the marker leaves that step incomplete, and the rerun rewrites it.
        """
        from zarr.core.sync import sync

        jobs = [
            a.setitem((i, slice(None), slice(None)), packed[n]) for n, a in self._arrays.items()
        ]
        if self._unmarked is not None:
            jobs.append(self._mark(self._unmarked))

        async def _all() -> None:
            await asyncio.gather(*jobs)

        sync(_all())
        self._unmarked = i

    def flush(self) -> None:
        """Mark the last written step complete."""
        from zarr.core.sync import sync

        if self._unmarked is not None:
            sync(self._mark(self._unmarked))
            self._unmarked = None

    def _mark(self, i: int):
        # Whole marker chunks: no read-modify-write of the chunk holding step i.
        self._flags[i] = True
        c0 = (i // CHUNK_TIME_1D) * CHUNK_TIME_1D
        c1 = min(c0 + CHUNK_TIME_1D, len(self._flags))
        return self._marker.setitem(slice(c0, c1), self._flags[c0:c1].copy())


def _root_attrs(
    tile: Tile, steps: Sequence[TimeStep], options: CubeOptions, parameters: dict
) -> dict:
    return {
        "Conventions": "CF-1.8",
        "coordinates": "spatial_ref",
        "title": f"geoproc analysis-ready cube, tile {tile.id}",
        "geoproc:layout_version": LAYOUT_VERSION,
        "geoproc:tile": tile.id,
        "geoproc:tile_size_px": tile.tile_size_px,
        "geoproc:resolution": tile.resolution,
        "geoproc:software_version": __version__,
        "geoproc:parameters": {**parameters, **options.to_attrs()},
        "geoproc:source_items": [s.item_ids for s in steps],
        "geoproc:source_versions": source_versions(steps),
        "geoproc:completion": "time_complete[i] is true once every chunk of step i is written",
        "geoproc:chunks": "all",
    }


def completed_step_keys(location: storage.Location) -> set[tuple[int, str]]:
    """(time in s, platform) of the steps a cube store holds complete; empty when unfinished.

    Reads the layout without consolidated metadata, as the builder does, so a store whose
    writer was killed between the template and its consolidation counts as "nothing done"
    instead of failing every resume.
    """
    existing = _read_existing(storage.zarr_store(location, read_only=True))
    if existing is None:
        return set()
    return {k for k, c in zip(existing["keys"], existing["complete"], strict=True) if c}


def _read_existing(store) -> dict | None:
    try:
        group = zarr.open_group(store, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        return None
    attrs = dict(group.attrs)
    if attrs.get("geoproc:layout_version") != LAYOUT_VERSION or "time" not in group:
        return None  # a layout write was interrupted before it finished: start over
    try:
        seconds = group["time"][:].astype(np.int64)
        platform = group["platform"][:].astype(str)
        complete = group["time_complete"][:].astype(bool)
        atmos = {a: group[a][:] for a in ATMOS_VARIABLES}
    except Exception:  # noqa: BLE001 - a torn marker chunk means nothing can be trusted complete
        return None
    sources = attrs.get("geoproc:source_items", [])
    n = len(sources)
    keys = [(int(t), str(p)) for t, p in zip(seconds[:n], platform[:n], strict=True)]
    steps = [
        TimeStep(np.datetime64(int(t), "s"), str(p), "", tuple({"id": i} for i in ids))
        for (t, p), ids in zip(keys, sources, strict=True)
    ]
    return {
        "attrs": attrs,
        "keys": keys,
        "steps": steps,
        "complete": complete[:n] if len(complete) >= n else np.zeros(n, bool),
        "variables": sorted(k for k in group.array_keys()),
        "atmos": {a: v[:n] for a, v in atmos.items()},
    }


def _check_compatible(existing, tile, band_names, qa_vars, location) -> None:
    attrs = existing["attrs"]
    if (
        attrs.get("geoproc:tile_size_px") != tile.tile_size_px
        or attrs.get("geoproc:resolution") != tile.resolution
    ):
        raise StoreError(
            f"{location.url} was built with --tile-size {attrs.get('geoproc:tile_size_px')} at "
            f"{attrs.get('geoproc:resolution')} m; pass the same values or a new --out."
        )
    missing = set(band_names) | set(qa_vars)
    missing -= set(existing["variables"])
    if missing:
        raise StoreError(
            f"{location.url} has no variables {sorted(missing)}: build with the same --collections "
            "and --bands as before, or use a new --out."
        )


def _merge_time_axis(
    old: list[TimeStep], complete: np.ndarray, new: Sequence[TimeStep]
) -> tuple[list[TimeStep], list[dict]]:
    """Existing steps keep their place; new steps may only follow the last one (append).

    An existing step that is not complete is rebuilt from this search's items.
    """
    old_keys = {s.key for s in old}
    fresh = {s.key: s for s in new}
    last = old[-1].key if old else None
    merged = [s if complete[i] or s.key not in fresh else fresh[s.key] for i, s in enumerate(old)]
    refused = []
    for s in new:
        if s.key in old_keys:
            continue
        if last is not None and s.key <= last:
            refused.append(
                {"time": str(s.time), "platform": s.platform, "items": s.item_ids,
                 "reason": "earlier than the store's last step; build a new --out to include it"}
            )  # fmt: skip
            continue
        merged.append(s)
    return merged, refused


def _write_layout(store, tile, steps, band_names, qa_vars, options, attrs, existing) -> None:
    """Metadata for the full time axis + 1-D variables + attrs + consolidated metadata."""
    n = len(steps)
    if existing is None:
        _write_template(store, tile, steps, band_names, qa_vars, options)
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    for name in [*band_names, *qa_vars]:
        arr = group[name]
        if arr.shape[0] != n:
            arr.resize((n, *arr.shape[1:]))
    one_d = _one_d_values(steps, existing)
    for name, values in one_d.items():
        arr = group[name]
        if arr.shape[0] != n:
            arr.resize((n,))
        arr[:] = zarr_layout.encode_strings(values, arr.dtype)
    group.attrs.put(attrs)
    _consolidate(store)


def _consolidate(store) -> None:
    """Rewrite the consolidated metadata in the store's own format (v2 new, v3 old stores)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmt = zarr.open_group(store, mode="r", use_consolidated=False).metadata.zarr_format
        zarr.consolidate_metadata(store, zarr_format=fmt)


def _one_d_values(steps, existing) -> dict[str, np.ndarray]:
    n = len(steps)
    complete = np.zeros(n, bool)
    if existing is not None:
        m = min(n, len(existing["complete"]))
        complete[:m] = existing["complete"][:m]
    atmos = {a: np.full(n, np.nan, np.float32) for a in ATMOS_VARIABLES}
    for i, s in enumerate(steps):
        if s.collection:
            for a, v in atmosphere_of(s).items():
                atmos[a][i] = v
        elif existing is not None:  # a step read back from the store: keep its stored values
            for a in ATMOS_VARIABLES:
                atmos[a][i] = existing["atmos"][a][i]
    return {
        "time": np.array([s.key[0] for s in steps], np.int64),
        "platform": np.array([s.platform for s in steps], "<U3"),
        "time_complete": complete,
        **atmos,
    }


def _chunk_codecs() -> list:
    """zstd level 1 with its frame checksum (`geoproc.zarr_layout.compressor`).

    The checksum makes every chunk verifiable later (`geoproc verify`): zstd checks it on
    every read, so a damaged chunk fails loudly, in GDAL as in zarr.
    """
    return [zarr_layout.compressor()]


def _write_template(store, tile, steps, band_names, qa_vars, options) -> None:
    """Every array's metadata with an empty time axis; `_write_layout` then sizes it.

    Why empty: xarray writes numpy-backed variables eagerly, and a full-length template
    would need lazy (dask) zeros to avoid writing data - importing dask.array costs more
    than the rest of a small build's start-up. Resizing writes only metadata.
    """
    steps = list(steps)[:0]
    n = 0
    shape = (n, *tile.shape)
    chunks = (1, min(CHUNK_YX, tile.tile_size_px), min(CHUNK_YX, tile.tile_size_px))
    data, encoding = {}, {}
    for name in [*band_names, *qa_vars]:
        enc = variable_encoding(name, sar_db=options.sar_db)
        dtype = np.uint8 if enc.dtype == "uint8" else np.float32
        data[name] = xr.Variable(("time", "y", "x"), np.zeros(shape, dtype), enc.attrs)
        # Zarr v2 has one fill value: .zarray's fill_value, which xarray reads as CF _FillValue
        e = {"dtype": enc.dtype, "chunks": chunks, "_FillValue": enc.fill,
             "compressors": _chunk_codecs()}  # fmt: skip
        if name in qa_vars:
            # QA stays uint8 when opened (bit tests need integers): the fill is only the
            # `geoproc:fill_value` attribute, not a CF _FillValue (every chunk is written).
            e["_FillValue"] = None
        if enc.packed:
            e.update(scale_factor=enc.scale, add_offset=enc.offset)
        encoding[name] = e
    for name in ATMOS_VARIABLES:
        enc = variable_encoding(name)
        data[name] = xr.Variable(("time",), np.full(n, np.nan, np.float32), enc.attrs)
        encoding[name] = {"chunks": (CHUNK_TIME_1D,), "_FillValue": np.nan,
                          "compressors": _chunk_codecs()}  # fmt: skip
    data["time_complete"] = xr.Variable(
        ("time",), np.zeros(n, bool), {"long_name": "all chunks of this time step are written"}
    )
    encoding["time_complete"] = {"chunks": (CHUNK_TIME_1D,), "compressors": _chunk_codecs()}
    coords = {
        "time": ("time", np.array([s.key[0] for s in steps], "datetime64[s]").astype("datetime64[ns]"),
                 {"standard_name": "time", "long_name": "acquisition time (UTC)"}),
        # UTF-8 bytes, not FixedLengthUTF32 (no Zarr spec; see zarr_layout); xarray decodes str
        "platform": ("time", np.array([s.platform.encode() for s in steps], "S3"),
                     {"long_name": "platform group", "_Encoding": "utf-8"}),
        "y": ("y", tile.y_coords, {"standard_name": "projection_y_coordinate", "units": "m"}),
        "x": ("x", tile.x_coords, {"standard_name": "projection_x_coordinate", "units": "m"}),
    }  # fmt: skip
    encoding["time"] = {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian",
                        "dtype": "int64", "chunks": (CHUNK_TIME_1D,),
                        "compressors": _chunk_codecs()}  # fmt: skip
    encoding["platform"] = {"chunks": (CHUNK_TIME_1D,), "compressors": _chunk_codecs()}
    ds = xr.Dataset(data, coords=coords)
    ds = ds.rio.write_crs(tile.crs).rio.write_transform(tile.transform)
    for name in ds.data_vars:
        ds[name].attrs.pop("grid_mapping", None)
        encoding[name]["grid_mapping"] = "spatial_ref"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(
            store,
            mode="w",
            compute=False,
            zarr_format=zarr_layout.ZARR_FORMAT,
            consolidated=False,
            encoding=encoding,
        )


@contextlib.contextmanager
def store_lock(location: storage.Location) -> Iterator[None]:
    """Hold ``{store}.lock`` for the duration (see `geoproc.store_lock`: atomic on S3 too)."""
    from geoproc.store_lock import hold

    with hold(location, what="build"):
        yield


def build_parameters(
    collections: Sequence[str], *, options: CubeOptions, start, end, max_cloud_cover: float
) -> tuple[list[str], list[str], dict]:
    """(band variables, QA variables, provenance parameters) of a cube build.

    One definition for the CLI's `cube build` and the pipeline, so both write the same
    root attributes and a store built by one is extended, not rewritten, by the other.
    """
    from geoproc.catalog.sensors import profile_for
    from geoproc.cube.assemble import cube_band_names, qa_names

    canonical = [profile_for(c).collection for c in collections]
    names = cube_band_names(canonical, options)
    parameters = {
        "collections": canonical,
        "start": str(start),
        "end": str(end),
        "max_cloud_cover": float(max_cloud_cover),
        "bands": names,
    }
    return names, qa_names(canonical), parameters


def build_cubes(
    catalog: str,
    *,
    collections: Sequence[str],
    aoi,
    start: str,
    end: str,
    out: str,
    tile_size_px: int = 1024,
    resolution: float = 30.0,
    max_cloud_cover: float = 80.0,
    options: CubeOptions | None = None,
    batch_size: int = 2,
    page_size: int = 100,
    verify: str = "quick",
) -> dict:
    """Plan, search, assemble and persist cubes for an AOI; return the run record.

    Tiles are built one after another; within a tile ``batch_size`` threads assemble steps
    while the caller's thread writes them in time order (at most batch_size + 1 steps in
    memory), so peak memory depends on the tile size and batch, not on the AOI or dates.
    """
    from geoproc.catalog.search import search_tiles
    from geoproc.catalog.sensors import profile_for
    from geoproc.errors import NoDataError
    from geoproc.grid import tiles_for_aoi

    options = options or CubeOptions()
    for collection in collections:  # unknown collections fail before any search
        profile_for(collection)
    tiles = tiles_for_aoi(aoi, tile_size_px=tile_size_px, resolution=resolution)
    found = search_tiles(
        catalog, tiles, collections=collections, start=start, end=end,
        max_cloud_cover=max_cloud_cover, page_size=page_size,
    )  # fmt: skip
    names, qas, parameters = build_parameters(
        collections, options=options, start=start, end=end, max_cloud_cover=max_cloud_cover
    )
    record = {"out": storage.parse_url(out).url, "search": found.to_record(), "tiles": {}}
    built = 0
    for tile in tiles:
        steps = found.tiles[tile.id].steps
        if not steps and not storage.exists(cube_location(out, tile.id)):
            record["tiles"][tile.id] = {"tile": tile.id, "status": "no data"}
            continue
        result = build_tile_store(
            out, tile, steps, band_names=names, qa_vars=qas, options=options,
            parameters=parameters, batch_size=batch_size, verify=verify,
        )  # fmt: skip
        record["tiles"][tile.id] = {"status": "built", **result.__dict__}
        built += 1
    if not built:
        raise NoDataError(
            f"The catalog returned no usable scenes for {', '.join(collections)} between {start} and "
            f"{end} over {len(tiles)} tile(s) ({found.found} found, {len(found.dropped)} dropped): "
            "widen --start/--end, --aoi or --max-cloud-cover."
        )
    return record
