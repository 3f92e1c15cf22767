"""The cell cache never serves a wrong result: code-keyed cells, corrupt cells, lost studies.

Each test here fails on a runner that keys cells only on their configuration,
or that takes a cached ``{"result": null}`` for a finished cell.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest

from validation import cache
from validation.__main__ import main
from validation.cache import CellCache, atomic_write_text, cell_key, source_hash
from validation.claims import Claim, at_least, within
from validation.runner import run_studies
from validation.study import Study, Summary

CALLS = []
RETURN_NONE = {"on": False}
FAKE_CODE = {}  # "module": the stand-in for numdiff's code, while a test installs one


def square_cell(config, seed):
    CALLS.append(config["i"])
    if RETURN_NONE["on"]:
        return None
    # Stands in for numdiff's code: a change to ``fakecode`` is a code change.
    fake = FAKE_CODE.get("module")
    return {"square": config["i"] ** 2 + (fake.OFFSET if fake else 0)}


def square_cells(config):
    return [(f"i={i}", square_cell, {"i": i}) for i in range(config["n"])]


def square_summarise(cell_results, config, outdir):
    total = sum(r.result["square"] for r in cell_results)
    n = config["n"]
    return Summary(claims=[within("sum of squares", (n - 1) * n * (2 * n - 1) / 6, total, 0.5)])


def fake_study(summarise=square_summarise, n=4):
    cfg = {"seed": 3, "n": n}
    return {"squares": Study("squares", "Squares", "Fake.", square_cells, summarise, cfg, cfg)}


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    RETURN_NONE["on"] = False
    cache.code_fingerprint.cache_clear()
    yield
    CALLS.clear()
    RETURN_NONE["on"] = False
    cache.code_fingerprint.cache_clear()


def _results(out):
    return json.loads((Path(out) / "results.json").read_text())


def _cell_files(out):
    return sorted((Path(out) / "cells" / "squares").glob("*.json"))


# -- code-keyed cells ---------------------------------------------------------------------


def test_source_hash_changes_with_every_source_edit(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code")
    base = source_hash({"pkg": pkg})
    assert base == source_hash({"pkg": pkg})  # deterministic
    (pkg / "notes.txt").write_text("still not code")
    assert source_hash({"pkg": pkg}) == base  # only *.py files count
    seen = {base}
    for edit in (lambda: (pkg / "a.py").write_text("x = 2\n"),
                 lambda: (pkg / "c.py").write_text(""),
                 lambda: (pkg / "c.py").rename(pkg / "d.py"),
                 lambda: (pkg / "sub" / "b.py").unlink()):
        edit()
        seen.add(source_hash({"pkg": pkg}))
    assert len(seen) == 5  # every edit gave a new hash
    assert source_hash({"other": pkg}) != source_hash({"pkg": pkg})  # the label counts


def test_code_fingerprint_covers_the_three_packages_and_libraries():
    code = cache.code_fingerprint()
    assert cache.PACKAGES == ("numdiff", "theory", "validation")
    assert set(code["versions"]) == {"numpy", "numba", "scipy"}
    import numpy

    assert code["versions"]["numpy"] == numpy.__version__
    folders = {name: cache.package_folder(name) for name in cache.PACKAGES}
    assert code["sources"] == source_hash(folders)
    assert cell_key("s", "f", {}, 1) == cell_key("s", "f", {}, 1, code=code["hash"])
    assert cell_key("s", "f", {}, 1) != cell_key("s", "f", {}, 1, code="other code")


def test_rerun_after_a_code_change_recomputes(tmp_path, monkeypatch, request):
    """The issue's repro: introduce a bug, rerun on the same --out: it must fail."""
    src = tmp_path / "src" / "fakecode"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("OFFSET = 0\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(cache, "PACKAGES", cache.PACKAGES + ("fakecode",))
    fakecode = importlib.import_module("fakecode")
    monkeypatch.setitem(FAKE_CODE, "module", fakecode)
    request.addfinalizer(lambda: sys.modules.pop("fakecode", None))
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    assert sorted(CALLS) == [0, 1, 2, 3]
    first = _results(out)["code"]

    # A bug (a different length, so no stale bytecode), then what a new process does.
    (src / "__init__.py").write_text("OFFSET = 100\n")
    importlib.reload(fakecode)
    cache.code_fingerprint.cache_clear()
    CALLS.clear()
    assert main(["--out", str(out)], studies=fake_study()) == 1  # the bug is caught
    assert sorted(CALLS) == [0, 1, 2, 3]  # nothing came from the cache
    second = _results(out)
    assert second["code"]["sources"] != first["sources"]
    assert second["code"]["versions"] == first["versions"]
    assert second["studies"][0]["cells_from_cache"] == 0

    CALLS.clear()  # unchanged code: everything is served from the cache again
    assert main(["--out", str(out)], studies=fake_study()) == 1
    assert CALLS == []


def test_results_json_records_the_code_and_is_written_atomically(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    results = _results(out)
    assert results["code"] == json.loads(json.dumps(cache.code_fingerprint()))
    assert all(json.loads(p.read_text())["code"] == results["code"]["hash"]
               for p in _cell_files(out))
    # A rerun replaces the files (a new inode) instead of rewriting them in place, so
    # a reader, or a kill midway, never sees a torn results.json or REPORT.md.
    inodes = {name: (out / name).stat().st_ino for name in ("results.json", "REPORT.md")}
    assert main(["--out", str(out)], studies=fake_study()) == 0
    assert all((out / name).stat().st_ino != ino for name, ino in inodes.items())
    assert not list(out.rglob("*.tmp"))

    target = tmp_path / "f.json"
    target.write_text("old")

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and list(tmp_path.glob(".*.tmp")) == []


# -- silent loss ---------------------------------------------------------------------------


def test_cell_rewritten_as_null_result_is_recomputed_not_dropped(tmp_path):
    """The issue's repro: ``{"result": null}`` in one cell file made the study vanish."""
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    reference = _results(out)["claims"]
    victim = _cell_files(out)[0]
    label = json.loads(victim.read_text())["label"]
    victim.write_text('{"result": null}')
    CALLS.clear()
    assert main(["--out", str(out)], studies=fake_study()) == 0
    assert CALLS == [int(label.split("=")[1])]  # exactly that cell ran again
    results = _results(out)
    assert results["claims"] == reference  # the study is still in the report
    assert results["studies"][0]["cells_from_cache"] == 3
    assert json.loads(victim.read_text())["result"] is not None


@pytest.mark.parametrize("text", [
    '{"result": null}', "null", "[1, 2]", '"text"', "42", '{"result": ', "", "{}",
    '{"label": "i=0"}', "\udcff",
])
def test_every_kind_of_corrupt_cell_is_a_miss(tmp_path, text):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    victim = _cell_files(out)[1]
    victim.write_bytes(text.encode("utf-8", "surrogateescape"))
    CALLS.clear()
    assert main(["--out", str(out)], studies=fake_study()) == 0
    assert len(CALLS) == 1 and len(_results(out)["claims"]) == 1


def test_another_cells_record_is_a_miss(tmp_path):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    a, b = _cell_files(out)[:2]
    a.write_text(b.read_text())  # a file copied over another: right shape, wrong cell
    CALLS.clear()
    assert main(["--out", str(out)], studies=fake_study()) == 0
    assert len(CALLS) == 1
    assert CellCache(out, "squares").load("no-such-key") is None


def test_cell_that_returns_nothing_is_an_error(tmp_path, capsys):
    out = tmp_path / "out"
    RETURN_NONE["on"] = True
    assert main(["--out", str(out)], studies=fake_study()) == 2
    results = _results(out)
    assert results["passed"] is False
    assert "returned None" in results["studies"][0]["error"]
    assert _cell_files(out) == []  # nothing cached that would be served next time
    assert "squares: FAILED" in capsys.readouterr().out


def test_null_cells_recomputed_to_nothing_are_an_error(tmp_path):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study()) == 0
    for path in _cell_files(out):
        path.write_text('{"result": null}')
    RETURN_NONE["on"] = True
    assert main(["--out", str(out)], studies=fake_study()) == 2
    assert _results(out)["studies"][0]["error"]


def test_study_with_zero_claims_is_a_failure(tmp_path, capsys):
    out = tmp_path / "out"
    studies = fake_study(summarise=lambda results, config, outdir: Summary(tables=["ok"]))
    assert main(["--out", str(out)], studies=studies) == 2
    results = _results(out)
    assert results["passed"] is False and results["claims"] == []
    assert "no claims" in results["studies"][0]["error"]
    assert "no claims" in (out / "REPORT.md").read_text()
    assert "squares: FAILED" in capsys.readouterr().out


def test_study_whose_cells_never_come_back_is_a_failure(tmp_path):
    class LosingExecutor:
        description = "loses every cell"

        def run(self, cells):
            return iter(())

    (outcome,) = run_studies(list(fake_study().values()), {"squares": {"seed": 3, "n": 2}},
                             tmp_path, LosingExecutor())
    assert not outcome.passed and "never came back" in outcome.error


# -- claim kinds in the report -------------------------------------------------------------


def kinds_summarise(cell_results, config, outdir):
    claims = [
        Claim("bound holds", 0.1, 0.05, 0.01, True, "<=", kind="theorem", detectable=0.04),
        Claim("prior bound", 0.2, 0.1, None, True, "<=", kind="theory-check",
                  detectable=0.0625),
        Claim("euler violates", 0.1, 0.38, 0.02, True, ">", kind="negative-control",
                  detectable=0.08),
        at_least("plain claim", 1.0, 2.0),
    ]
    return Summary(claims=claims)


def test_report_shows_kind_band_and_detectable_bias(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--out", str(out)], studies=fake_study(summarise=kinds_summarise)) == 0
    printed = capsys.readouterr().out
    results = _results(out)
    kinds = {c["name"]: (c["kind"], c["detectable"]) for c in results["claims"]}
    assert kinds == {"bound holds": ("theorem", 0.04), "prior bound": ("theory-check", 0.0625),
                     "euler violates": ("negative-control", 0.08),
                     "plain claim": ("theorem", 1.0)}  # one-sided: detectable = margin
    assert results["counts"] == {"theorem": {"claims": 2, "passed": 2},
                                 "theory-check": {"claims": 1, "passed": 1},
                                 "negative-control": {"claims": 1, "passed": 1}}
    report = (out / "REPORT.md").read_text()
    assert "| kind |" in report and "| band |" in report and "| detectable bias |" in report
    assert "| prior bound | theory self-check | 0.2 | <= | 0.1 | - | 0.0625 | PASS |" in report
    assert "| euler violates | negative control | 0.1 | > | 0.38 | 0.02 | 0.08 | PASS |" in report
    counts = "theorem 2/2, theory self-check 1/1, negative control 1/1"
    assert counts in report and counts in printed
    assert "theory self-check" in printed and "0.0625" in printed


class _Silent:
    def cell(self, *args):
        pass

    def note(self, text):
        pass

    def finish(self):
        pass
