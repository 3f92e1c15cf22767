"""``python -m validation``'s exit status and its checks of ``--out``.

0: every claim passed; 1: a claim failed; 2: a study failed with an error;
3: nothing ran (a wrong command line or an unusable ``--out``), with one line on
stderr and no traceback.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import validation
import validation.__main__ as cli
from validation.__main__ import main
from validation.claims import within
from validation.study import Study, Summary

ROOT = Path(__file__).resolve().parents[2]


def one_cell(config, seed):
    if config.get("raise"):
        raise RuntimeError("a broken cell")
    return {"value": config["value"]}


def studies(value=1.0, raise_=False):
    def cells(config):
        return [("only", one_cell, {"value": value, "raise": raise_})]

    def summarise(results, config, outdir):
        return Summary(claims=[within("value is 1", 1.0, results[0].result["value"], 0.1)])

    cfg = {"seed": 0}
    return {"one": Study("one", "One", "Fake.", cells, summarise, cfg, cfg)}


def _one_line_about_out(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "--out" in lines[0] and "Traceback" not in err
    return lines[0]


def test_exit_status_0_1_2(tmp_path):
    assert main(["--out", str(tmp_path / "a")], studies=studies()) == 0
    assert main(["--out", str(tmp_path / "b")], studies=studies(value=2.0)) == 1
    assert main(["--out", str(tmp_path / "c")], studies=studies(raise_=True)) == 2


def test_empty_out_is_rejected_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for out in ("", "  "):
        assert main(["--out", out], studies=studies()) == 3
        assert "empty" in _one_line_about_out(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # nothing written into the current directory


def test_out_that_is_a_file_is_rejected(tmp_path, capsys):
    path = tmp_path / "report"
    path.write_text("keep me")
    assert main(["--out", str(path)], studies=studies()) == 3
    assert "is an existing file" in _one_line_about_out(capsys.readouterr().err)
    assert path.read_text() == "keep me"


def test_out_under_a_file_is_rejected(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["--out", str(tmp_path / "file" / "deeper" / "out")], studies=studies()) == 3
    assert "under a file" in _one_line_about_out(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; "
                    "test_read_only_out_as_root_without_its_override covers root")
def test_read_only_out_is_rejected(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["--out", str(folder)], studies=studies()) == 3
        assert main(["--out", str(folder / "new")], studies=studies()) == 3
    finally:
        folder.chmod(0o755)
    assert "not writable" in _one_line_about_out(capsys.readouterr().err.splitlines()[0])
    assert list(folder.iterdir()) == []


RO_SCRIPT = """
import sys
from validation.__main__ import main
from validation.claims import at_least
from validation.study import Study, Summary

def cell(config, seed):
    return {"x": 1}

def summarise(results, config, outdir):
    return Summary(claims=[at_least("ran", 1, len(results))])

cfg = {"seed": 0}
study = Study("ro", "Read-only", "Fake.", lambda c: [("c", cell, {})], summarise, cfg, cfg)
sys.exit(main(["--out", sys.argv[1]], studies={"ro": study}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop the capability that lets root "
                           "write anywhere")
@pytest.mark.parametrize("sub", ["", "new"])
def test_read_only_out_as_root_without_its_override(tmp_path, sub):
    folder = tmp_path / "ro"
    folder.mkdir()
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(RO_SCRIPT))
    folder.chmod(0o555)
    caps = "-dac_override,-dac_read_search,-fowner"
    cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}",
           sys.executable, str(script), str(folder / sub)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 3, proc.stderr
    line = _one_line_about_out(proc.stderr)
    assert ("not writable" in line) if not sub else ("cannot be created" in line)
    assert list(folder.iterdir()) == []


def test_usage_errors_exit_3_not_2(capsys):
    for argv in (["--workers", "0"], ["--only", "nosuch"], ["--bogus"]):
        with pytest.raises(SystemExit) as info:
            main(argv, studies=studies())
        assert info.value.code == 3
    capsys.readouterr()


def test_exit_codes_are_documented_in_help_and_docstrings(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"], studies=studies())
    assert info.value.code == 0
    text = capsys.readouterr().out
    for doc in (text, cli.__doc__):
        assert "exit status" in doc.lower()
        for code in "0123":
            assert f"\n  {code}  " in doc or f"\n{code}\n" in doc
    assert "--out" in text.split("exit status")[1]  # code 3 names the option
    assert "3 when nothing ran" in validation.__doc__.replace("\n", " ")


def test_full_profile_runs_the_full_configuration_or_the_default(tmp_path):
    """``--full`` runs a study's ``full`` configuration where it has one and its default
    otherwise; the report names the profile. ``--quick --full`` is a usage error."""
    def summarise(results, config, outdir):
        return Summary(claims=[within("value is 1", 1.0, results[0].result["value"], 0.1)])

    def cells(config):
        return [("only", one_cell, {"value": config["value"], "raise": False})]

    with_full = Study("a", "A", "Fake.", cells, summarise, {"seed": 0, "value": 1.0},
                      {"seed": 0, "value": 1.0}, full={"seed": 0, "value": 5.0})
    without = Study("b", "B", "Fake.", cells, summarise, {"seed": 0, "value": 1.0},
                    {"seed": 0, "value": 5.0})
    assert main(["--out", str(tmp_path / "d")], studies={"a": with_full}) == 0
    assert main(["--out", str(tmp_path / "f"), "--full"], studies={"a": with_full}) == 1
    assert main(["--out", str(tmp_path / "g"), "--full"], studies={"b": without}) == 0
    assert "full configuration" in (tmp_path / "g" / "REPORT.md").read_text()
    with pytest.raises(SystemExit) as info:
        main(["--quick", "--full"], studies={"a": with_full})
    assert info.value.code == 3
    with pytest.raises(ValueError, match="profile"):
        with_full.config("long")
