"""The scale study passes on clean code and fails when the score keeps too few points.

Cells run in this process (no cache, so patches are seen), with the study's seeds.
"""

from __future__ import annotations

from numdiff.solvers import exp_em
from validation.executors import call_cell
from validation.studies import scale as sc
from validation.study import CellResult

CONFIG = {**sc.STUDY.quick, "n_data": [1000]}


def run(outdir):
    results = [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
               for c in sc.STUDY.plan(CONFIG)]
    return sc.STUDY.summarise(results, CONFIG, outdir)


def test_clean_code_passes(tmp_path):
    summary = run(tmp_path)
    assert [c.passed for c in summary.claims] == [True, True]
    assert all(p.exists() for p in summary.figures)


def test_registered_before_the_audit():
    from validation.studies import STUDIES

    names = list(STUDIES)
    assert names.index("scale") < names.index("audit") == len(names) - 1


def test_sampler_noise_too_large_fails(monkeypatch, tmp_path):
    """exp_em with 1.5 times its noise: samples sit too far from their training point.

    Score bugs at this scale are not what the study can see: from exact ``p_T`` at
    ``sigma_T^2 = 10^-2`` the posterior is nearly that of the nearest point, and a
    denoiser evaluated at a quarter of the time still passes both claims (tried).
    """
    right = exp_em.ExponentialEM.step

    def noisy(self, model, iv, x, z=None, state=None):
        return right(self, model, iv, x, 1.5 * z, state)

    monkeypatch.setattr(exp_em.ExponentialEM, "step", noisy)
    assert not all(c.passed for c in run(tmp_path).claims)
