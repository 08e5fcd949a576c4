"""Progress on stderr: a bar on a terminal, plain lines in logs, nothing with --quiet.

Why three modes: a bar is what a person at a terminal wants, but in a CI log or a
Prefect worker a bar becomes thousands of carriage returns, so there each finished piece
of work becomes one line instead; `--quiet` silences both. The library reports through
this small interface and never decides by itself whether stderr is a terminal.
"""

from __future__ import annotations

import sys
from typing import IO


class Progress:
    """Counts finished pieces of work per stage (tiles, units, products) and says so on `stream`."""

    def __init__(
        self, *, quiet: bool = False, bar: bool | None = None, stream: IO[str] | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar_enabled = (is_tty if bar is None else bar) and not quiet
        self._bar = None
        self.done = 0
        self.total = 0

    def stage(self, label: str, total: int) -> None:
        """Start counting `total` pieces of work called `label`."""
        self.close()
        self.done, self.total = 0, int(total)
        if self.bar_enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, file=self.stream, leave=True)

    def advance(self, note: str = "", n: int = 1) -> None:
        """`n` more pieces are finished; `note` says which (a line when there is no bar)."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if note:
                self._bar.set_postfix_str(note, refresh=True)
        elif note and not self.quiet:
            print(f"[{self.done}/{self.total}] {note}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """One line of information (kept above the bar when there is one)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class NoProgress(Progress):
    """Says nothing: the default of library calls."""

    def __init__(self) -> None:
        super().__init__(quiet=True, bar=False)
