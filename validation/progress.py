"""Progress of a run on stderr: a tqdm bar over the cells, and one line per event.

The bar is shown only when the stream is a terminal; in a log file or a CI job
it is off, and only the event lines (a study summarised, a cell failed) are
written, one per line.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

#: Default for ``stream``: ``sys.stderr`` as it is when the display is made.
STDERR = "stderr"


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (``False`` for ``None``)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


class Progress:
    """Report finished cells.

    Parameters
    ----------
    total : int
        Number of cells in the run (cached ones included).
    stream : file-like, None or ``"stderr"``, optional
        Where to write; ``"stderr"`` (default) is ``sys.stderr`` at construction
        time, ``None`` silences the display.
    """

    def __init__(self, total: int, stream=STDERR):
        self.stream = sys.stderr if stream == STDERR else stream
        self.total = total
        self.done = 0
        self.bar = tqdm(total=total, file=self.stream, unit="cell", dynamic_ncols=True,
                        disable=not is_terminal(self.stream))

    def cell(self, study: str, label: str, elapsed: float | None, status: str = "done"):
        """Record one finished cell; ``status`` is ``done``, ``cached`` or ``FAILED``."""
        self.done += 1
        took = "" if elapsed is None else f" {elapsed:.1f} s"
        self.bar.set_postfix_str(f"{study}: {label} {status}{took}", refresh=False)
        self.bar.update(1)

    def note(self, text: str):
        """A line of its own (a study summarised, an error), above the bar if there is one."""
        if self.stream is None:
            return
        if self.bar.disable:
            self.stream.write(text + "\n")
            self.stream.flush()
        else:
            self.bar.write(text, file=self.stream)

    def finish(self):
        """Close the bar (leaves its last state on the terminal)."""
        self.bar.close()
