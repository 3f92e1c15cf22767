"""The validation framework: claims, cell cache and resume, report, exit status.

These use small fake studies, so they need nothing from numdiff's numerics.
"""

import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tqdm import tqdm

from validation.__main__ import main
from validation.cache import CellCache, cell_key, jsonable
from validation.claims import Claim, at_least, at_most, within
from validation.progress import Progress
from validation.study import Study, Summary

ROOT = Path(__file__).resolve().parents[2]

# Cell executions, counted per cell label; a cell raises once FAIL_AFTER cells have run.
CALLS = []
FAIL_AFTER = {"n": None}


def square_cell(config, seed):
    if FAIL_AFTER["n"] is not None and len(CALLS) >= FAIL_AFTER["n"]:
        raise RuntimeError("simulated interruption")
    CALLS.append(config["i"])
    # The seed enters the result, so a changed seed would show in the comparison.
    return {"i": config["i"], "square": config["i"] ** 2, "seed": seed}


def square_cells(config):
    return [(f"i={i}", square_cell, {"i": i}) for i in range(config["n"])]


def square_summarise(cell_results, config, outdir):
    total = sum(r.result["square"] for r in cell_results)
    n = config["n"]
    predicted = (n - 1) * n * (2 * n - 1) / 6  # sum of squares 0..n-1, closed form
    claim = within("sum of squares", predicted + config.get("offset", 0), total, 0.5)
    return Summary(claims=[claim], tables=[f"total {total}"])


def fake_study(n=6, offset=0):
    cfg = {"seed": 7, "n": n, "offset": offset}
    return Study("squares", "Squares", "A fake study.", square_cells, square_summarise, cfg, cfg)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_AFTER["n"] = None
    yield
    CALLS.clear()
    FAIL_AFTER["n"] = None


def test_claim_json_round_trip_keeps_every_field():
    claims = [
        Claim("a", 0.1, 0.05, 0.01, True, "<=", "detail", "s"),
        Claim("b", math.inf, math.nan, None, False),
        at_most("c", 1.0, -math.inf),
    ]
    for c in claims:
        back = Claim.from_json(c.to_json())
        for field in ("name", "predicted", "measured", "uncertainty", "passed", "comparison",
                      "detail", "study"):
            x, y = getattr(c, field), getattr(back, field)
            assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
    # Strict JSON: non-finite values are strings, not bare NaN tokens.
    assert json.loads(claims[1].to_json())["measured"] == "nan"


def test_claim_constructors_compute_passed():
    assert at_most("x", 0.1, 0.1).passed and not at_most("x", 0.1, 0.1000001).passed
    assert at_least("x", 1e-3, 0.5).passed and not at_least("x", 1e-3, 1e-4).passed
    assert within("x", 1.0, 1.2, 0.25).passed and not within("x", 1.0, 1.3, 0.25).passed
    assert not at_most("x", 0.1, math.nan).passed  # NaN never passes
    with pytest.raises(ValueError, match="band"):
        within("x", 1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="data"):
        Claim.from_dict({"name": "x", "predicted": 1, "measured": 1, "uncertainty": None,
                         "passed": True, "bogus": 1})
    with pytest.raises(TypeError, match="measured"):
        Claim("x", 1.0, "abc", None, True)


def test_cache_key_and_atomic_store(tmp_path):
    k1 = cell_key("s", "m.f", {"a": 1, "b": [1, 2]}, 3)
    assert k1 == cell_key("s", "m.f", {"b": [1, 2], "a": 1}, 3)  # key order is irrelevant
    assert k1 != cell_key("s", "m.f", {"a": 1, "b": [1, 2]}, 4)
    cache = CellCache(tmp_path, "s")
    assert cache.load(k1) is None
    cache.store(k1, {"result": {"x": 1.5}})
    assert cache.load(k1) == {"result": {"x": 1.5}}
    assert [p.name for p in cache.folder.iterdir()] == [f"{k1}.json"]  # no temporary left
    cache.path(k1).write_text('{"result": ')  # a torn file is recomputed, not trusted
    assert cache.load(k1) is None
    with pytest.raises(TypeError, match="set"):
        jsonable({"x": {1, 2}})


def _claims(out):
    return json.loads((Path(out) / "results.json").read_text())["claims"]


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    study = {"squares": fake_study(n=6)}
    reference = tmp_path / "reference"
    assert main(["--out", str(reference)], studies=study) == 0
    assert sorted(CALLS) == list(range(6))

    CALLS.clear()
    FAIL_AFTER["n"] = 4  # the fifth cell raises: an interruption midway
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=study) == 2
    assert len(CALLS) == 4
    assert len(list((out / "cells" / "squares").glob("*.json"))) == 4

    FAIL_AFTER["n"] = None
    CALLS.clear()
    assert main(["--out", str(out)], studies=study) == 0
    assert len(CALLS) == 2  # only the two unfinished cells ran
    assert _claims(out) == _claims(reference)
    records = {p.name: json.loads(p.read_text())
               for p in (reference / "cells" / "squares").glob("*.json")}
    for name, rec in records.items():
        again = json.loads((out / "cells" / "squares" / name).read_text())
        assert again["result"] == rec["result"]

    CALLS.clear()
    assert main(["--out", str(out)], studies=study) == 0
    assert CALLS == []  # a complete run recomputes nothing


KILL_SCRIPT = """
import sys, time
import validation.cache
from validation.__main__ import main

# Both runs must see the same code: pin the fingerprint, so that an edit to the
# sources between the two processes (another checkout user) cannot empty the cache.
_code = validation.cache.code_fingerprint()
validation.cache.code_fingerprint = lambda: _code
from validation.study import Study, Summary
from validation.claims import at_least

def slow_cell(config, seed):
    with open(sys.argv[2], "a") as fh:
        fh.write(f"{config['i']}\\n")
    time.sleep(0.3)
    return {"i": config["i"]}

def cells(config):
    return [(f"i={i}", slow_cell, {"i": i}) for i in range(8)]

def summarise(results, config, outdir):
    return Summary(claims=[at_least("all cells", 8, len(results))])

cfg = {"seed": 1}
study = Study("slow", "Slow", "Sleeps.", cells, summarise, cfg, cfg)
sys.exit(main(["--out", sys.argv[1]], studies={"slow": study}))
"""


def test_killed_subprocess_loses_nothing_finished(tmp_path):
    script = tmp_path / "run_slow.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    out, log = tmp_path / "out", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(log)], env=env,
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    folder = out / "cells" / "slow"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(folder.glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in folder.glob("*.json")}
    assert 3 <= len(finished) < 8
    started_first = log.read_text().split()
    rc = subprocess.run([sys.executable, str(script), str(out), str(log)], env=env, check=False,
                        capture_output=True, timeout=60).returncode
    assert rc == 0
    started_second = log.read_text().split()[len(started_first):]
    # Every cell finished before the kill is reused; only the others ran again.
    assert len(started_second) == 8 - len(finished)
    assert len(list(folder.glob("*.json"))) == 8
    assert not list(folder.glob(".*.tmp"))


def test_failed_claim_gives_nonzero_exit_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies={"squares": fake_study(n=4, offset=3)}) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["passed"] is False
    assert [c["passed"] for c in results["claims"]] == [False]
    assert "FAIL" in (out / "REPORT.md").read_text()
    assert "0/1 claims pass" in capsys.readouterr().out


def test_dask_scheduler_gives_the_in_process_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    study = {"squares": fake_study(n=5)}
    assert main(["--out", str(tmp_path / "a")], studies=study) == 0
    # An in-process cluster: its workers share this module, so the fake cells resolve.
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        rc = main(["--out", str(tmp_path / "b"), "--scheduler", cluster.scheduler_address],
                  studies=study)
    assert rc == 0
    assert _claims(tmp_path / "b") == _claims(tmp_path / "a")
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["executor"].startswith("dask")
    assert results["studies"][0]["cells"] == 5 and results["studies"][0]["cells_from_cache"] == 0
    assert len(results["studies"][0]["cell_seeds"]) == 5


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_tqdm_bar_on_a_terminal_only():
    term, log = _Terminal(), io.StringIO()
    for stream in (term, log):
        progress = Progress(3, stream)
        assert isinstance(progress.bar, tqdm)
        progress.cell("s", "a", 1.5)
        progress.note("s: 1 claims, 0 failed")
        progress.cell("s", "b", None, "cached")
        progress.cell("s", "c", 0.1, "FAILED")
        progress.finish()
        assert progress.done == 3
    assert "3/3" in term.getvalue() and "s: c FAILED" in term.getvalue()
    assert "s: 1 claims, 0 failed\n" in term.getvalue()
    # Not a terminal (a log file, CI): no bar, only the event lines.
    assert log.getvalue() == "s: 1 claims, 0 failed\n"
    silent = Progress(1, None)
    silent.cell("s", "a", 1.0)
    silent.note("nothing")
    silent.finish()
