"""A time-chunked copy of a cube or product store: bounded memory, resumable, incremental.

Why not rechunker: rechunker 0.5.4 (the latest release) imports ``zarr.hierarchy``, which
zarr-python 3 removed (tested: ``AttributeError: module 'zarr' has no attribute
'hierarchy'``), and it has no notion of appending dates to an earlier copy or of
resuming a killed copy. The copy here is simple because the source is already chunked
one date per object: a spatial *window* (a multiple of the target's space chunk that
covers whole source chunks) is read across the new dates and written as whole target
chunks ``(N, S, S)``; every source chunk is decoded once.

Layout: the target is written with `geoproc.zarr_layout` (Zarr v2, GDAL-readable),
stored values are copied raw (same dtype, scale/offset and fill: bit-identical data), and
only complete cube steps are copied (a cube's ``time_complete``).

Crash safety and increments (the cube writer's template-first pattern):

1. the *plan* is ``n_old -> n_new`` dates: ``n_old`` is what the target's root attribute
   ``geoproc:rechunk`` says was committed (0 for a new copy);
2. layout: a new copy writes its template; an append resizes the arrays; both rewrite the
   1-D variables along time; then ``{out}.rechunk/{plan}/layout.done``;
3. each window writes the time chunks from ``floor(n_old / N) * N`` to ``n_new`` whole
   (chunk-aligned, so rewriting gives the same bytes), then its ``w{row}-{col}.done``;
4. commit: root attributes with ``n_time = n_new``, consolidated metadata, then the
   progress folder is removed.

A killed copy, rerun, finds the same plan and skips the windows marked done; a rerun
after the source gained dates appends them (the partial last time chunk is rewritten).
If the dates already copied no longer match the source's first dates, the copy is
rebuilt from the start.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
import zarr

from geoproc import storage
from geoproc.errors import UsageError
from geoproc.zarr_layout import ZARR_FORMAT, compressor, gdal_readable, to_zarr_kwargs

log = logging.getLogger(__name__)

TIME_DIMS = ("time", "year")
ATTR = "geoproc:rechunk"
CHUNK_1D = 4096
DEFAULT_SPACE_CHUNK = 64
"""Point reads decode one (N, S, S) chunk: small S keeps that cheap (N=73, S=64: 600 KB int16)."""
_KEEP_ENCODING = ("dtype", "scale_factor", "add_offset", "_FillValue", "units", "calendar")
"""Encodings that decide the stored numbers (copied raw, so they must be the source's)."""
_CF_LINKS = ("grid_mapping", "coordinates")
"""Encodings xarray turns into CF attributes (GDAL finds the CRS through grid_mapping)."""


@dataclass
class RechunkResult:
    """What one rechunk did (printed by the CLI as JSON)."""

    source: str
    out: str
    status: str = "written"
    """``written``, ``appended`` or ``up to date``."""
    dates_before: int = 0
    dates_after: int = 0
    time_chunk: int = 0
    space_chunk: int = 0
    windows_total: int = 0
    windows_written: int = 0
    windows_resumed: int = 0
    variables: list[str] = field(default_factory=list)


def parse_time_chunk(text: str) -> int | None:
    """``all`` -> None (the whole series at the first copy), else a positive integer."""
    if str(text).strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"--time-chunk {text!r}: pass a positive number of dates or 'all'.")
    return value


def rechunk_store(
    source: str,
    out: str,
    *,
    time_chunk: int | None = None,
    space_chunk: int = DEFAULT_SPACE_CHUNK,
) -> RechunkResult:
    """Create or extend the time-chunked copy of ``source`` at ``out`` (see module doc)."""
    from geoproc.store_lock import hold

    src = storage.parse_url(source, argument="URL")
    dst = storage.parse_url(out, argument="--out")
    if space_chunk < 1:
        raise UsageError(f"--space-chunk {space_chunk}: pass a positive number of pixels.")
    if dst.scheme == src.scheme and (
        dst.path == src.path or dst.path.startswith(src.path.rstrip("/") + "/")
    ):
        raise UsageError(f"--out {dst.url} is the source store or inside it: pick another --out.")
    ds, raw_src, tdim, index = _open_source(src)
    arrays3d = [n for n, v in ds.data_vars.items() if v.dims == (tdim, "y", "x")]
    if not arrays3d:
        raise UsageError(f"URL {src.url} has no ({tdim}, y, x) variable to rechunk.")
    with hold(dst, what="rechunk"):
        storage.remove_partial_writes(dst)
        committed = _committed(dst, ds, tdim, index, arrays3d)
        n_old = committed["n_time"] if committed else 0
        n_new = len(index)
        s_chunk = min(space_chunk, int(ds.sizes["y"]), int(ds.sizes["x"]))
        if committed:
            _check_same_request(committed, time_chunk, s_chunk, dst)
            n_chunk = int(committed["time_chunk"])
        else:
            n_chunk = time_chunk or n_new
        window = _window(raw_src, arrays3d, s_chunk, ds)
        ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
        windows = [(r, c) for r in range(0, ny, window) for c in range(0, nx, window)]
        result = RechunkResult(
            src.url, dst.url, dates_before=n_old, dates_after=n_new, time_chunk=n_chunk,
            space_chunk=s_chunk, windows_total=len(windows), variables=arrays3d,
        )  # fmt: skip
        progress = _progress(dst)
        plan = f"{n_old}-{n_new}"
        _drop_stale_plans(progress, keep=plan)
        if committed and n_old == n_new:
            result.status = "up to date"
            _commit(dst, ds, tdim, index, arrays3d, committed, progress)
            return result
        done = _markers(progress.join(plan))
        store = storage.zarr_store(dst)
        if "layout.done" not in done:
            # first: a kill during the template write must leave a sign that --out is ours
            storage.write_bytes_atomic(progress.join(plan, "started"), b"")
            _write_layout(store, raw_src, ds, tdim, index, arrays3d, n_old, n_chunk, s_chunk)
            storage.write_bytes_atomic(progress.join(plan, "layout.done"), b"")
        group = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
        targets = {n: group[n].with_config({"write_empty_chunks": True}) for n in arrays3d}
        sources = {n: raw_src[n] for n in arrays3d}
        t0 = (n_old // n_chunk) * n_chunk
        for r, c in windows:
            name = f"w{r}-{c}.done"
            if name in done:
                result.windows_resumed += 1
                continue
            _copy_window(sources, targets, index, t0, n_new, n_chunk,
                         (slice(r, min(r + window, ny)), slice(c, min(c + window, nx))))  # fmt: skip
            storage.write_bytes_atomic(progress.join(plan, name), b"")
            result.windows_written += 1
        info = {
            "source": src.url, "time_dim": tdim, "time_chunk": n_chunk,
            "time_chunk_requested": "all" if time_chunk is None else time_chunk,
            "space_chunk": s_chunk, "n_time": n_new, "variables": arrays3d,
        }  # fmt: skip
        _commit(dst, ds, tdim, index, arrays3d, info, progress)
        result.status = "appended" if n_old else "written"
        return result


def _open_source(src: storage.Location) -> tuple[xr.Dataset, zarr.Group, str, np.ndarray]:
    """(decoded lazy dataset, raw zarr group, time dimension, indices of the dates to copy)."""
    if not storage.exists(src):
        raise UsageError(f"URL {src.url} does not exist: pass a cube or product store.")
    store = storage.zarr_store(src, read_only=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xr.open_zarr(store, chunks=None, decode_coords="all")
            raw = zarr.open_group(store, mode="r")
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError) as exc:
        raise UsageError(f"URL {src.url} is not a Zarr store ({exc}).") from None
    tdim = next((d for d in TIME_DIMS if d in ds.dims), None)
    if tdim is None:
        raise UsageError(f"URL {src.url} has no time (or year) dimension: nothing to rechunk.")
    n = int(ds.sizes[tdim])
    if "time_complete" in ds and ds["time_complete"].dims == (tdim,):
        index = np.flatnonzero(ds["time_complete"].values.astype(bool))
    else:
        index = np.arange(n)
    if not len(index):
        raise UsageError(f"URL {src.url} holds no complete date yet: build it first.")
    return ds, raw, tdim, index


def _progress(dst: storage.Location) -> storage.Location:
    """``{out}.rechunk``: markers beside the copy (never inside it, so GDAL sees only data)."""
    return storage.Location(dst.scheme, dst.path.rstrip("/") + ".rechunk")


def _markers(location: storage.Location) -> set[str]:
    fs, path = storage.filesystem(location)
    try:
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)}
    except FileNotFoundError:
        return set()


def _drop_stale_plans(progress: storage.Location, *, keep: str) -> None:
    """Progress of an earlier plan (the source changed since the kill) no longer applies."""
    fs, path = storage.filesystem(progress)
    for name in _markers(progress) - {keep}:
        fs.rm(f"{path}/{name}", recursive=True)


def _committed(
    dst: storage.Location, ds: xr.Dataset, tdim: str, index: np.ndarray, arrays3d: list[str]
) -> dict | None:
    """The committed state of an existing copy, or None to (re)build from the start.

    Refuses to overwrite a store that is not a copy (no ``geoproc:rechunk`` attribute and
    no progress folder of ours). Returns None, with a log line, when the copied dates or
    variables no longer match the source (a rebuild).
    """
    if not storage.exists(dst):
        return None
    try:
        group = zarr.open_group(storage.zarr_store(dst, read_only=True), mode="r",
                                use_consolidated=False)  # fmt: skip
        attrs = dict(group.attrs)
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError):
        attrs = {}
    info = attrs.get(ATTR)
    if not isinstance(info, dict):
        if storage.exists(_progress(dst)):
            return None  # our first copy, killed before its commit
        raise UsageError(
            f"--out {dst.url} exists and is not a geoproc time-chunked copy: pick a new --out."
        )
    n = int(info.get("n_time", 0))
    try:
        old = xr.open_zarr(storage.zarr_store(dst, read_only=True), chunks=None,
                           consolidated=False)[tdim].values[:n]  # fmt: skip
    except (KeyError, ValueError):
        return None
    new = ds[tdim].values[index[:n]]
    if n > len(index) or not np.array_equal(old, new) or info.get("variables") != arrays3d:
        log.warning("%s: the source's dates or variables changed before the last copied date; "
                    "rebuilding the copy", dst.url)  # fmt: skip
        return None
    if _strings_grow(ds, tdim, index, dst):
        log.warning("%s: a text coordinate got longer values; rebuilding the copy", dst.url)
        return None
    changed = _source_rewritten(attrs, ds, tdim, index[:n])
    if changed:
        log.warning("%s: %s since the last copy; rebuilding the copy", dst.url, changed)
        return None
    return info


STORE_PROVENANCE = ("geoproc:input_fingerprint", "algorithm_version")
"""Root attributes that change when a product store is rewritten (flood and canopy rewrite
every date when a date is added; any product when its version or parameters change). Not a
cube's ``geoproc:parameters``: it holds the request's dates, which every run moves."""


def _source_rewritten(copied: dict, ds: xr.Dataset, tdim: str, index: np.ndarray) -> str | None:
    """Why the dates already copied may no longer hold the source's values, or None.

    Dates and variable names alone cannot tell: a product store rewritten in full keeps its
    dates, and a cube rewrites a complete step in place when a late or reprocessed granule
    arrives. The copy keeps the source's root attributes as they were (`_commit`), so the
    store's provenance and each copied date's source lists are compared with the source's.
    """
    source = json.loads(json.dumps(ds.attrs, default=str))
    for key in STORE_PROVENANCE:
        if copied.get(key) != source.get(key):
            return f"the source's {key} changed"
    n_time = int(ds.sizes[tdim])
    for key, value in source.items():
        if key.startswith("geoproc:source") and isinstance(value, list) and len(value) == n_time:
            before = copied.get(key)
            now = [value[i] for i in index]
            if not isinstance(before, list) or before[: len(now)] != now:
                return f"the source's {key} of copied dates changed"
    return None


def _strings_grow(ds: xr.Dataset, tdim: str, index: np.ndarray, dst: storage.Location) -> bool:
    """Whether a text variable along time now needs more bytes than the copy stores."""
    group = zarr.open_group(
        storage.zarr_store(dst, read_only=True), mode="r", use_consolidated=False
    )
    for name, var in ds.variables.items():
        if var.dims == (tdim,) and var.dtype.kind in "UOS" and name in group:
            width = np.dtype(group[name].dtype).itemsize
            values = np.asarray(var.values[index]).astype(str)
            needed = max((len(v.encode()) for v in values), default=0)
            if needed > width:
                return True
    return False


def _check_same_request(info: dict, time_chunk: int | None, s_chunk: int, dst) -> None:
    asked = "all" if time_chunk is None else time_chunk
    if asked != info.get("time_chunk_requested"):
        raise UsageError(
            f"--time-chunk {asked}: {dst.url} was made with --time-chunk "
            f"{info.get('time_chunk_requested')}; pass that, or a new --out."
        )
    if s_chunk != info.get("space_chunk"):
        raise UsageError(
            f"--space-chunk {s_chunk}: {dst.url} was made with --space-chunk "
            f"{info.get('space_chunk')}; pass that, or a new --out."
        )


def _window(raw: zarr.Group, arrays3d: list[str], s_chunk: int, ds: xr.Dataset) -> int:
    """Window side: the smallest multiple of the target chunk covering a source chunk."""
    src = max(max(raw[n].chunks[1], raw[n].chunks[2]) for n in arrays3d)
    side = s_chunk * math.ceil(src / s_chunk)
    return min(side, s_chunk * math.ceil(max(ds.sizes["y"], ds.sizes["x"]) / s_chunk))


def _clean_encoding(var: xr.Variable, chunks: tuple[int, ...] | None) -> dict:
    enc = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
    if var.dtype.kind in "USO":  # text: stored as UTF-8 bytes by `gdal_readable`
        enc = {}
    if chunks is not None:
        enc["chunks"] = chunks
    # the layout's codec (zstd with its frame checksum): damage in a copy fails loudly too
    enc["compressors"] = [compressor()]
    return enc


def _write_layout(store, raw_src: zarr.Group, ds: xr.Dataset, tdim: str, index: np.ndarray, arrays3d: list[str],
                  n_old: int, n_chunk: int, s_chunk: int) -> None:  # fmt: skip
    """A new copy's template, or an append's resize; then the 1-D variables along time.

    The template is xarray's: the 3-D arrays are lazy Dask zeros written with
    ``compute=False`` (metadata only: their chunks are copied raw afterwards), everything
    else (coordinates, 1-D and static variables) is written with its values.
    """
    n_new = len(index)
    along = [n for n, v in ds.variables.items() if v.dims == (tdim,)]
    if n_old == 0:
        import dask.array as da

        # other variables along time (canopy's (year, class, y, x) probabilities) are left out:
        # an append could not grow them with the 3-D arrays, and they are not point series
        others = [n for n, v in ds.data_vars.items() if tdim in v.dims and n not in arrays3d
                  and v.dims != (tdim,)]  # fmt: skip
        if others:
            log.info("%s: not copied (not (%s, y, x) series): %s", tdim, tdim, ", ".join(others))
        template = ds.drop_vars(others).isel({tdim: index})
        encoding = {}
        for name, var in template.variables.items():
            if name in arrays3d:
                encoding[name] = _clean_encoding(var, (n_chunk, s_chunk, s_chunk))
            elif var.dims == (tdim,):
                encoding[name] = _clean_encoding(var, (CHUNK_1D,))
            elif var.dims == ("y", "x"):
                encoding[name] = _clean_encoding(var, (s_chunk, s_chunk))
            else:
                encoding[name] = _clean_encoding(var, None)
        for name in arrays3d:
            var = template[name]
            lazy = da.zeros(var.shape, dtype=var.dtype, chunks=(n_chunk, s_chunk, s_chunk))
            template[name] = xr.Variable(var.dims, lazy, var.attrs)
        template = template.drop_vars(arrays3d).load().assign({n: template[n] for n in arrays3d})
        template.attrs = {}
        for name in template.variables:  # CF links only: the numbers' encoding is `encoding`
            enc = template[name].encoding
            template[name].encoding = {k: enc[k] for k in _CF_LINKS if k in enc}
            if {"y", "x"} <= set(template[name].dims) and "spatial_ref" in template.variables:
                # GDAL reads the CRS only through grid_mapping (some sources omit it); it
                # must be in `encoding`, which replaces the variables' own at write time
                encoding[name]["grid_mapping"] = enc.get("grid_mapping", "spatial_ref")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gdal_readable(template).to_zarr(
                store, mode="w", compute=False, encoding=encoding, **to_zarr_kwargs()
            )
        return
    group = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    for name in [*arrays3d, *along]:
        arr = group[name]
        if arr.shape[0] != n_new:
            arr.resize((n_new, *arr.shape[1:]))
    one_d = ds.drop_vars([n for n in ds.variables if n not in along]).isel({tdim: index}).load()
    for name in one_d.variables:
        one_d[name].encoding = {}
    kwargs = {**to_zarr_kwargs(), "consolidated": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdal_readable(one_d).to_zarr(store, mode="r+", region={tdim: slice(0, n_new)}, **kwargs)
    # xarray leaves an index coordinate out of region writes: copy its stored numbers (the
    # copy has the source's time encoding, so they decode to the same times)
    group[tdim][:] = raw_src[tdim].get_orthogonal_selection((index,))


def _copy_window(sources: dict, targets: dict, index: np.ndarray, t0: int, n_new: int,
                 n_chunk: int, window: tuple[slice, slice]) -> None:  # fmt: skip
    """Copy one spatial window's dates ``t0:n_new`` one time chunk and variable at a time.

    Memory: one variable x one time chunk x the window (raw dtype), plus zarr's buffers.
    """
    ys, xs = window
    for a in range(t0, n_new, n_chunk):
        b = min(a + n_chunk, n_new)
        picks = index[a:b]
        contiguous = picks[-1] - picks[0] == len(picks) - 1
        sel = slice(int(picks[0]), int(picks[-1]) + 1) if contiguous else picks
        for name, target in targets.items():
            values = sources[name].get_orthogonal_selection((sel, ys, xs))
            target[a:b, ys, xs] = values
            del values


def _commit(dst: storage.Location, ds: xr.Dataset, tdim: str, index: np.ndarray,
            arrays3d: list[str], info: dict, progress: storage.Location) -> None:  # fmt: skip
    """Root attributes (the source's, per-date lists kept aligned) + consolidation; cleanup."""
    store = storage.zarr_store(dst)
    attrs = json.loads(json.dumps(ds.attrs, default=str))
    for key, value in list(attrs.items()):
        if (
            isinstance(value, list)
            and len(value) == int(ds.sizes[tdim])
            and key.startswith("geoproc:source")
        ):
            attrs[key] = [value[i] for i in index]
    attrs[ATTR] = info
    group = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    group.attrs.put(attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(store, zarr_format=ZARR_FORMAT)
    fs, path = storage.filesystem(progress)
    if fs.exists(path):
        fs.rm(path, recursive=True)
