"""Score every product on the real labelled cases it knows, beside simple baselines.

Why: the sample archive only says how well a product fits the generator that made it. Real
scenes — the licensed copies in `tests/data/realdata/` plus any folder a user names (for
example a GPL-licensed series that must stay outside the repository) — say whether a product
is better than a one-line baseline on the same pixels. Each product package owns its cases
and metrics (`geoproc.products.<name>.real_cases.evaluate_real`); this module only finds the
folders, collects the rows and formats the table.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

from geoproc.errors import UsageError
from geoproc.product_registry import PRODUCT_NAMES, real_cases_module

log = logging.getLogger(__name__)

PRODUCTS_WITH_REAL_CASES = PRODUCT_NAMES


def default_folders() -> list[Path]:
    """The real cases shipped with a checkout (`tests/data/realdata`), when present."""
    root = Path(__file__).resolve().parents[1] / "tests" / "data" / "realdata"
    return [root] if root.is_dir() else []


def candidate_folders(folders: Sequence[Path]) -> list[Path]:
    """Each given folder and its immediate subfolders: a case is either."""
    out: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise UsageError(
                f"--real: {folder} is not a folder; name folders that hold real cases."
            )
        out.append(folder)
        out.extend(sorted(p for p in folder.iterdir() if p.is_dir()))
    return out


def evaluate_real(
    folders: Sequence[Path] | None = None, *, products: Sequence[str] = PRODUCTS_WITH_REAL_CASES
) -> list[dict]:
    """One row per (product, case, metric) found in `folders` (default: the shipped cases)."""
    roots = list(folders) if folders else default_folders()
    if not roots:
        raise UsageError(
            "--real: no real cases shipped with this installation; name folders that hold them, "
            "e.g. `geoproc evaluate --real path/to/realdata`."
        )
    candidates = candidate_folders(roots)
    rows: list[dict] = []
    seen: set[tuple] = set()
    for product in products:
        module = real_cases_module(product)
        for row in module.evaluate_real(candidates):
            key = (row.get("product"), row.get("case"), row.get("metric"))
            if key in seen:
                continue
            seen.add(key)
            row["target_met"] = target_met(row)
            rows.append(row)
    return rows


def target_met(row: dict) -> bool | None:
    """Whether the row's score meets its stated target (`>= 0.9`, `<= 0.3 K`, `60-75 %`)."""
    target = str(row.get("target") or "").strip()
    value = row.get("geoproc")
    if not target or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    share_range = re.search(r"(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)\s*%", target)
    if share_range:  # a share of pixels, e.g. the 1-sigma coverage "60-75 %"
        share = float(row.get("coverage_1sigma", value))
        share = share * 100 if share <= 1 else share
        return float(share_range.group(1)) <= share <= float(share_range.group(2))
    bound = re.match(r"(>=|<=)\s*(-?\d+(?:\.\d+)?)", target)
    if not bound:
        return None
    number = float(bound.group(2))
    return float(value) >= number if bound.group(1) == ">=" else float(value) <= number


def format_table(rows: list[dict]) -> str:
    """A Markdown table: per case the product's score beside the best and each baseline."""
    lines = [
        "| product | case | kind | metric | geoproc | baselines | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        baselines = ", ".join(
            f"{name}: {_fmt(v)}" for name, v in (row.get("baselines") or {}).items()
        )
        met = {True: "yes", False: "**no**", None: "–"}[row.get("target_met")]
        extra = ""
        if row.get("coverage_1sigma") is not None:
            extra = f" (1σ coverage {_fmt(row['coverage_1sigma'])})"
        lines.append(
            f"| {row.get('product')} | {row.get('case')} | {row.get('kind', 'real')} | "
            f"{row.get('metric')} | {_fmt(row.get('geoproc'))}{extra} | {baselines or '–'} | "
            f"{row.get('target') or '–'} | {met} |"
        )
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)
