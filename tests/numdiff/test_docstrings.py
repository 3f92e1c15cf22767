"""numpydoc sections of numdiff's public API.

Every public function and method that takes arguments has a ``Parameters``
section, every function a ``Returns`` section, and every public class whose
constructor takes arguments a ``Parameters`` section. "Public" is ``__all__``
of each module plus the solver classes of ``numdiff/solvers/*.py`` and the
public methods those classes define.
"""

import importlib
import inspect
import pkgutil

import pytest

import numdiff.solvers

MODULES = [
    "numdiff.schedules", "numdiff.score", "numdiff.neighbors", "numdiff.matching",
    "numdiff.grids", "numdiff.solvers", "numdiff.sampling", "numdiff.metrics",
] + [
    f"numdiff.solvers.{m.name}" for m in pkgutil.iter_modules(numdiff.solvers.__path__)
]


def _public_callables():
    seen = {}
    for name in MODULES:
        module = importlib.import_module(name)
        names = getattr(module, "__all__", None) or [
            n for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == name
        ]
        for attr in names:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
            if inspect.isclass(obj):
                # Inherited methods count: a model's formulas live in its base classes.
                for klass in reversed(obj.__mro__):
                    if not klass.__module__.startswith("numdiff"):
                        continue
                    for meth_name, meth in vars(klass).items():
                        func = getattr(meth, "__func__", meth)  # classmethod / staticmethod
                        if not meth_name.startswith("_") and inspect.isfunction(func):
                            seen[f"{obj.__module__}.{obj.__qualname__}.{meth_name}"] = func
    return seen


PUBLIC = _public_callables()


def _takes_arguments(obj):
    params = [p for p in inspect.signature(obj).parameters.values() if p.name not in ("self", "cls")]
    return bool(params)


def test_the_scan_sees_the_api():
    # Guards the test itself against an empty or partial scan.
    for name in ["numdiff.grids.uniform_lambda", "numdiff.grids.geometric",
                 "numdiff.solvers.get_solver", "numdiff.solvers.base.reverse_drift",
                 "numdiff.solvers.base.Interval", "numdiff.solvers.base.Interval.between",
                 "numdiff.sampling.sample", "numdiff.metrics.nearest_ratio",
                 "numdiff.solvers.heun.Heun", "numdiff.solvers.base.Solver.step",
                 "numdiff.schedules.Schedule.lam_inv", "numdiff.schedules.VPLinear",
                 "numdiff.score.EmpiricalScore.score", "numdiff.score.EmpiricalScore.top_weights",
                 "numdiff.neighbors.nearest_neighbors"]:
        assert name in PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_callable_has_numpydoc_sections(name):
    obj = PUBLIC[name]
    doc = inspect.getdoc(obj) or ""
    if _takes_arguments(obj):
        assert "\nParameters\n----------\n" in doc, f"{name}: no Parameters section"
    if inspect.isfunction(obj):
        assert "\nReturns\n-------\n" in doc, f"{name}: no Returns section"
