"""Import hygiene: no warnings on import, and the JIT cache works from a read-only install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import numdiff

SNIPPET = (
    "import sys; sys.path.insert(0, {root!r}); import numpy as np; import numdiff as nd; "
    "assert nd.__file__.startswith({root!r}), nd.__file__; "
    "f = nd.EmpiricalScore(np.eye(3), nd.OU()); "
    "d = f.denoise(0.5, np.ones((2, 3))); assert abs(d.sum() - 2.0) < 1e-12"
)


def test_import_emits_no_warning():
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import numdiff, theory"],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to drop the capability that lets root write anywhere",
)
def test_runs_from_read_only_install(tmp_path):
    """Copy the package, remove write permission and drop CAP_DAC_OVERRIDE so that
    even root cannot write there: Numba must fall back to its user-wide cache."""
    root = tmp_path / "ro"
    shutil.copytree(Path(numdiff.__file__).parent, root / "numdiff",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    caps = "-dac_override,-dac_read_search,-fowner"
    cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}",
           sys.executable, "-W", "error", "-c", SNIPPET.format(root=str(root))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert out.returncode == 0, out.stderr
    assert not list(root.rglob("*.nbi")), "the cache was written into the read-only tree"


def test_stale_numba_caches_are_dropped_when_any_source_changes(tmp_path):
    """Numba keys a cached kernel on its own file only; numdiff drops every cached
    kernel of the package once any of its sources changes (a kernel inlines
    functions of other files)."""
    import os

    from numdiff._kernels.jit import drop_stale_caches

    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "search.py"
    source.write_text("x = 1\n")
    cache = tmp_path / "pkg" / "__pycache__"
    cache.mkdir()
    kernel = cache / "plan.plan_query-95.py311.1.nbc"
    index = cache / "plan.plan_query-95.py311.nbi"
    for f in (kernel, index):
        f.write_bytes(b"compiled")
    assert drop_stale_caches(tmp_path)  # no stamp yet: dropped
    assert not kernel.exists() and not index.exists()
    kernel.write_bytes(b"compiled")
    assert not drop_stale_caches(tmp_path)  # nothing changed: kept
    assert kernel.exists()
    source.write_text("x = 2  # edited\n")
    os.utime(source, ns=(1, 1))
    assert drop_stale_caches(tmp_path)  # another file changed: dropped
    assert not kernel.exists()
