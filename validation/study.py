"""What a study is: independent cells, then one summarising step.

A study splits its work into *cells*: pure functions of ``(config, seed)`` that
return JSON-serialisable results, so that they can run in any order, in any
process, and be cached on disk. ``summarise`` then turns the cells' results into
claims, figures and markdown tables. Cell functions must be defined at module
level (a Dask worker imports them by name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cache import canonical, cell_key
from .claims import Claim, Finding


def cell_seed(base_seed: int, config: dict) -> int:
    """Seed of a cell derived from the study seed and the cell's configuration.

    Derived from the configuration rather than the cell's position, so adding a
    cell to a study leaves the other cells' seeds (and cache keys) unchanged.
    """
    text = f"{int(base_seed)}:{canonical(config)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@dataclass(frozen=True)
class Cell:
    """One independent unit of work of a study.

    Parameters
    ----------
    study : str
        Name of the owning study.
    label : str
        Short human label shown in progress lines.
    func : callable
        Module-level ``func(config, seed) -> JSON-serialisable``.
    config : dict
        The cell's configuration (JSON-serialisable).
    seed : int
        The cell's seed.
    """

    study: str
    label: str
    func: Callable
    config: dict
    seed: int

    @property
    def func_name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    @property
    def key(self) -> str:
        """Cache key: the cell's identity and the hash of the running code."""
        return cell_key(self.study, self.func_name, self.config, self.seed)


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its label, configuration, seed and result."""

    label: str
    config: dict
    seed: int
    result: object


@dataclass
class Summary:
    """What ``summarise`` returns.

    Attributes
    ----------
    claims : list of Claim
    figures : list of pathlib.Path
        PNG files written under the output folder.
    tables : list of str
        Markdown blocks (tables or short notes) for the report.
    findings : list of Finding
        Statistics measured for conjectures (never pass/fail); a study still
        needs at least one claim.
    captions : dict
        Figure file stem -> its caption in the report: one or two sentences on
        what is plotted, what to see, and which claims it illustrates.
    """

    claims: list[Claim] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A named study.

    Parameters
    ----------
    name : str
        Identifier used by ``--only`` and in cache paths.
    title : str
        Heading in the report.
    description : str
        Markdown paragraph for the report: what is compared with what.
    cells : callable
        ``cells(config) -> list of (label, func, cell_config)``.
    summarise : callable
        ``summarise(cell_results, config, outdir) -> Summary``; ``cell_results``
        is a list of :class:`CellResult` in the order ``cells`` listed them.
    default : dict
        Default configuration; must hold an integer ``"seed"``.
    quick : dict
        Reduced configuration for ``--quick``; must hold ``"seed"``.
    full : dict, optional
        Extended configuration for ``--full`` (the whole range an issue asks for,
        beyond the default's time budget); studies without one run their default.
    """

    name: str
    title: str
    description: str
    cells: Callable
    summarise: Callable
    default: dict
    quick: dict
    full: dict | None = None

    def config(self, profile):
        """The configuration of ``profile``: ``"default"``, ``"quick"`` or ``"full"``
        (the default where the study has no full one)."""
        if profile not in ("default", "quick", "full"):
            raise ValueError(f"profile must be 'default', 'quick' or 'full'; got {profile!r}")
        if profile == "quick":
            return self.quick
        return self.full if profile == "full" and self.full is not None else self.default

    def plan(self, config: dict) -> list[Cell]:
        """The study's cells for ``config``, seeds derived from ``config["seed"]``."""
        if "seed" not in config:
            raise ValueError(f"`config` of study {self.name!r} needs a 'seed'")
        out = []
        for label, func, cell_config in self.cells(config):
            seed = cell_seed(config["seed"], {"label": label, **cell_config})
            out.append(Cell(self.name, label, func, cell_config, seed))
        return out
