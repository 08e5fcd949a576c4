"""How a rerun's search changes an existing cube's time axis: late and reprocessed granules.

Why: a date marked complete used to be skipped for good, so a granule published late for
that date, or a reprocessed one (new id, newer ``updated`` or processing version), never
reached the cube; and a date earlier than the store's last one was refused for good.

Rules (`reconcile_time_axis`, called by the store builder):

* a complete step whose fresh search has a different set of item ids, or an item whose
  version (``updated``, processing version) is newer than the one recorded in the store's
  ``geoproc:source_versions``, is rewritten from the fresh items;
* an incomplete step is rebuilt from this search's items (as before);
* a new date after the last one is appended; a new date before it is inserted in time
  order, and every later step moves one place and is rewritten - only when this search
  covers all of them (otherwise their items are unknown: the date is refused, naming
  the ``--start``/``--end`` that would include it). Rewriting the tail costs reads, but
  keeps the store's one-step-per-chunk layout and its crash safety unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from geoproc.catalog.search import TimeStep


@dataclass
class TimeAxisPlan:
    """The merged axis and what changes on it."""

    steps: list[TimeStep]
    complete: np.ndarray
    """Aligned with `steps`; False for every step to (re)write."""
    refused: list[dict] = field(default_factory=list)
    rewritten: list[dict] = field(default_factory=list)
    """``{"time", "platform", "reason"}`` of complete steps that will be rewritten."""


def _newer(fresh: str, recorded: str) -> bool:
    return bool(fresh) and fresh > recorded if recorded else bool(fresh.split("|", 1)[0])


def _why_rewrite(old: TimeStep, versions: Sequence[str], fresh: TimeStep) -> str | None:
    old_ids, new_ids = old.item_ids, fresh.item_ids
    if sorted(old_ids) != sorted(new_ids):
        added = sorted(set(new_ids) - set(old_ids))
        gone = sorted(set(old_ids) - set(new_ids))
        parts = ([f"new item(s) {', '.join(added)}"] if added else []) + (
            [f"item(s) no longer found {', '.join(gone)}"] if gone else []
        )
        return "; ".join(parts)
    if not versions:
        return None  # a store built before versions were recorded: ids are all we know
    recorded = dict(zip(old_ids, versions, strict=False))
    for item_id, version in zip(new_ids, fresh.item_versions, strict=True):
        if _newer(version, recorded.get(item_id, "")):
            return f"item {item_id} reprocessed ({version.strip('|')})"
    return None


def reconcile_time_axis(existing: dict, new: Sequence[TimeStep]) -> TimeAxisPlan:
    """Merge a store's steps (``existing`` from the store reader) with a fresh search's."""
    old: list[TimeStep] = list(existing["steps"])
    complete = np.asarray(existing["complete"], bool).copy()
    recorded = existing["attrs"].get("geoproc:source_versions") or []
    old = [
        replace(s, recorded_versions=tuple(recorded[i])) if i < len(recorded) else s
        for i, s in enumerate(old)
    ]
    fresh = {s.key: s for s in new}
    plan = TimeAxisPlan(steps=[], complete=np.zeros(0, bool))
    merged: list[TimeStep] = []
    for i, s in enumerate(old):
        f = fresh.get(s.key)
        if f is None:
            merged.append(s)
        elif not complete[i]:
            merged.append(f)
        else:
            why = _why_rewrite(s, s.recorded_versions, f)
            if why:
                complete[i] = False
                plan.rewritten.append({"time": str(s.time), "platform": s.platform, "reason": why})
            merged.append(f if why else s)
    old_keys = {s.key for s in old}
    last = old[-1].key if old else None
    later = [s for s in new if s.key not in old_keys and (last is None or s.key > last)]
    late = sorted((s for s in new if s.key not in old_keys and last is not None and s.key < last),
                  key=lambda s: s.key)  # fmt: skip
    if late:
        k = next(i for i, s in enumerate(old) if s.key > late[0].key)
        uncovered = [s for s in old[k:] if s.key not in fresh]
        if uncovered:
            first, end = (
                np.datetime_as_string(late[0].time, "D"),
                np.datetime_as_string(old[-1].time, "D"),
            )
            for s in late:
                plan.refused.append(
                    {"time": str(s.time), "platform": s.platform, "items": s.item_ids,
                     "reason": f"earlier than the store's last step; rerun with --start {first} "
                               f"or earlier and --end {end} or later to insert it (the later "
                               "steps are rewritten in their new places)"}
                )  # fmt: skip
        else:
            tail = sorted([fresh[s.key] for s in old[k:]] + late, key=lambda s: s.key)
            for s in old[k:]:
                if complete[old.index(s)]:
                    plan.rewritten.append({"time": str(s.time), "platform": s.platform,
                                           "reason": "moved by an inserted late date"})  # fmt: skip
            merged = merged[:k] + tail
            complete = np.concatenate([complete[:k], np.zeros(len(tail), bool)])
    plan.steps = merged + later
    plan.complete = np.concatenate([complete, np.zeros(len(plan.steps) - len(complete), bool)])
    return plan


def source_versions(steps: Sequence[TimeStep]) -> list[list[str]]:
    """Per step, the item versions to record in ``geoproc:source_versions``."""
    return [list(s.item_versions) for s in steps]
