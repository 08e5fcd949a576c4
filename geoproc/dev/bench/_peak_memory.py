"""Peak resident memory of one process, as the benchmarks report it.

Why not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` (from ``getrusage`` in the child or
``wait4`` in the parent) keeps the high-water mark of the process image it replaced at
``exec``, i.e. the parent's RSS at the fork. A bench parent holding 400 MiB made every child
report at least 400 MiB. ``VmHWM`` in ``/proc/self/status`` belongs to the new image only.
"""

from __future__ import annotations

import resource
import sys

HWM_FILE_VARIABLE = "GEOPROC_BENCH_HWM_FILE"
"""A child started with `child_prelude` writes its own peak (MiB) to this file at exit."""


def peak_mib() -> float:
    """This process's peak RSS in MiB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def child_prelude() -> str:
    """Python source that makes a `python -c` child write its ``VmHWM`` (MiB) at exit.

    Self-contained (no geoproc import), so a peer library's child imports only its own code.
    """
    return (
        "import atexit as _a, os as _o\n"
        "def _w():\n"
        f"    f = _o.environ.get({HWM_FILE_VARIABLE!r})\n"
        "    if f:\n"
        "        kb = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "        open(f, 'w').write(str(int(kb) / 1024))\n"
        "_a.register(_w)\n"
    )


def read_child_peak(path, fallback_mib: float) -> float:
    """The peak a `child_prelude` child wrote, else `fallback_mib` (e.g. wait4's ru_maxrss)."""
    try:
        return float(open(path).read())
    except (OSError, ValueError):
        return fallback_mib
