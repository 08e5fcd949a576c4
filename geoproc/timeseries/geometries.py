"""Points and polygons from the analyst's file, reprojected to a store's CRS.

GeoJSON is WGS84 lon/lat (RFC 7946, no other CRS); CSV has ``lon,lat`` (WGS84) or ``x,y``
columns in the CRS named by ``--crs``. Each feature keeps an id: the feature's ``id``, its
``id`` (or ``name``) property, the CSV's ``id`` column, or its position (0-based).
Reprojection is pyproj's (``always_xy``); polygons are reprojected vertex by vertex with
shapely, after densifying long edges so a straight edge in lon/lat stays straight enough
in the store's CRS at the pixel scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from geoproc.errors import MissingFileError, UsageError

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Points:
    """Point ids and coordinates in `crs`."""

    ids: list[str]
    x: np.ndarray
    y: np.ndarray
    crs: CRS

    def to(self, crs: CRS) -> Points:
        """The same points in another CRS."""
        if crs.equals(self.crs):
            return self
        tr = Transformer.from_crs(self.crs, crs, always_xy=True)
        x, y = tr.transform(self.x, self.y)
        return Points(self.ids, np.asarray(x, float), np.asarray(y, float), crs)


@dataclass(frozen=True)
class Polygons:
    """Polygon ids and shapely (Multi)Polygons in `crs`."""

    ids: list[str]
    geoms: list
    crs: CRS

    def to(self, crs: CRS, *, max_segment: float | None = None) -> Polygons:
        """The same polygons in another CRS (edges densified to ``max_segment`` source units)."""
        import shapely

        if crs.equals(self.crs):
            return self
        tr = Transformer.from_crs(self.crs, crs, always_xy=True)
        geoms = []
        for g in self.geoms:
            if max_segment:
                g = shapely.segmentize(g, max_segment)
            geoms.append(shapely.transform(g, tr.transform, interleaved=False))
        return Polygons(self.ids, geoms, crs)


def read_points(path: str, *, crs: str | None = None) -> Points:
    """Points from a GeoJSON (Point features) or CSV file; errors name ``--points``."""
    file = _existing(path, "--points")
    if file.suffix.lower() == ".csv":
        return _csv_points(file, crs)
    if crs:
        raise UsageError(
            f"--crs applies to CSV x,y columns only; {path} is GeoJSON (always WGS84)."
        )
    ids, coords = [], []
    for i, (fid, geom) in enumerate(_features(file, "--points")):
        if geom.get("type") != "Point":
            raise UsageError(
                f"--points {path}: feature {i} is a {geom.get('type')}, not a Point; pass "
                "polygons with --polygons."
            )
        c = geom.get("coordinates") or []
        if len(c) < 2:
            raise UsageError(f"--points {path}: feature {i} has no coordinates.")
        ids.append(fid if fid is not None else str(i))
        try:
            coords.append((float(c[0]), float(c[1])))
        except (TypeError, ValueError):
            raise UsageError(
                f"--points {path}: feature {i}'s coordinates {c!r} are not [lon, lat] numbers."
            ) from None
    xy = np.asarray(coords, float).reshape(-1, 2)
    _check_lonlat(xy[:, 0], xy[:, 1], path, "--points")
    return Points(_unique(ids, path, "--points"), xy[:, 0], xy[:, 1], WGS84)


def read_polygons(path: str) -> Polygons:
    """(Multi)Polygons from a GeoJSON file in WGS84; errors name ``--polygons``."""
    import shapely
    from shapely.geometry import shape

    file = _existing(path, "--polygons")
    if file.suffix.lower() == ".csv":
        raise UsageError(f"--polygons {path}: polygons come as GeoJSON, not CSV.")
    ids, geoms = [], []
    for i, (fid, geom) in enumerate(_features(file, "--polygons")):
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            raise UsageError(
                f"--polygons {path}: feature {i} is a {geom.get('type')}, not a Polygon; pass "
                "points with --points."
            )
        try:
            g = shape(geom)
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"--polygons {path}: feature {i} is not a valid polygon ({exc})."
            ) from None
        if g.is_empty or not g.is_valid:
            raise UsageError(
                f"--polygons {path}: feature {i} is empty or invalid "
                f"({shapely.is_valid_reason(g)}); fix it (e.g. shapely make_valid)."
            )
        xs, ys = np.asarray(g.exterior.coords if g.geom_type == "Polygon" else
                            [c for p in g.geoms for c in p.exterior.coords]).T  # fmt: skip
        _check_lonlat(xs, ys, path, "--polygons")
        ids.append(fid if fid is not None else str(i))
        geoms.append(g)
    return Polygons(_unique(ids, path, "--polygons"), geoms, WGS84)


def _existing(path: str, option: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise MissingFileError(f"{option} {path} does not exist: check the path.")
    return file


def _features(file: Path, option: str) -> list[tuple[str | None, dict]]:
    """(id, geometry) of each feature of a GeoJSON FeatureCollection, Feature or geometry."""
    try:
        doc = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {file} is not GeoJSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{option} {file} is not a GeoJSON object.")
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features") or []
    elif doc.get("type") == "Feature":
        feats = [doc]
    else:
        feats = [{"type": "Feature", "geometry": doc}]
    out = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise UsageError(f"{option} {file}: feature {i} is not a GeoJSON object.")
        props = f.get("properties") or {}
        fid = f.get("id", props.get("id", props.get("name")))
        out.append((None if fid is None else str(fid), f.get("geometry") or {}))
    if not out:
        raise UsageError(f"{option} {file} holds no feature.")
    return out


def _csv_points(file: Path, crs: str | None) -> Points:
    import pandas as pd

    try:
        table = pd.read_csv(file)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UsageError(f"--points {file} is not a readable CSV ({exc}).") from None
    cols = {c.strip().lower(): c for c in table.columns}
    if {"lon", "lat"} <= set(cols):
        if crs:
            raise UsageError(
                f"--crs {crs}: {file} has lon,lat columns, which are WGS84; drop --crs or name "
                "the columns x,y."
            )
        xname, yname, point_crs = cols["lon"], cols["lat"], WGS84
    elif {"x", "y"} <= set(cols):
        if not crs:
            raise UsageError(
                f"--points {file} has x,y columns: name their CRS with --crs (e.g. EPSG:32633)."
            )
        try:
            point_crs = CRS.from_user_input(crs)
        except Exception:  # noqa: BLE001 - pyproj raises CRSError and friends
            raise UsageError(
                f"--crs {crs!r} is not a CRS pyproj knows (e.g. EPSG:32633)."
            ) from None
        xname, yname = cols["x"], cols["y"]
    else:
        raise UsageError(
            f"--points {file} needs lon,lat columns (WGS84) or x,y columns with --crs; it has "
            f"{', '.join(map(str, table.columns))}."
        )
    if table.empty:
        raise UsageError(f"--points {file} holds no row.")
    try:
        x = table[xname].astype(float).to_numpy()
        y = table[yname].astype(float).to_numpy()
    except ValueError as exc:
        raise UsageError(f"--points {file}: a coordinate is not a number ({exc}).") from None
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise UsageError(f"--points {file}: a coordinate is empty or not finite.")
    if point_crs.equals(WGS84):
        _check_lonlat(x, y, str(file), "--points")
    ids = (
        table[cols["id"]].astype(str).tolist() if "id" in cols else [str(i) for i in range(len(x))]
    )
    return Points(_unique(ids, str(file), "--points"), x, y, point_crs)


def _check_lonlat(lon: np.ndarray, lat: np.ndarray, path: str, option: str) -> None:
    if not (np.all(np.abs(lon) <= 180) and np.all(np.abs(lat) <= 90)):
        raise UsageError(
            f"{option} {path}: coordinates outside lon -180..180 / lat -90..90; GeoJSON and "
            "lon,lat columns are WGS84 degrees (projected x,y go in a CSV with --crs)."
        )


def _unique(ids: list[str], path: str, option: str) -> list[str]:
    seen: set[str] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]
    if dup:
        raise UsageError(f"{option} {path}: ids must be unique; {dup[0]!r} repeats.")
    return ids
