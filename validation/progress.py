"""A one-line progress display on stderr.

On a terminal the line is rewritten in place (carriage return); otherwise
(a log file, a CI job) each finished cell gets its own line.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Report finished cells.

    Parameters
    ----------
    total : int
        Number of cells in the run (cached ones included).
    stream : file-like, optional
        Defaults to ``sys.stderr``; ``None`` silences the display.
    """

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._width = 0

    def cell(self, study: str, label: str, elapsed: float | None, status: str = "done"):
        """Record one finished cell; ``status`` is ``done``, ``cached`` or ``FAILED``."""
        self.done += 1
        if self.stream is None:
            return
        took = "" if elapsed is None else f" {elapsed:6.1f} s"
        clock = time.perf_counter() - self.start
        line = f"[{self.done}/{self.total} {clock:6.1f} s] {study}: {label} {status}{took}"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str):
        """A line of its own (a study summarised, an error)."""
        if self.stream is None:
            return
        if self.tty and self._width:
            self.stream.write("\n")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self):
        if self.stream is not None and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
