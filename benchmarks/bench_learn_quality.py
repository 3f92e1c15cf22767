"""What a digits net's sample quality costs: the ladder from the study's default nets to
reference-quality ones (docs/learn.md, "Reaching data quality").

One net per configuration on S1 of the study ``trained_denoisers`` at N = 700 (its split:
``disjoint_splits``, 397 digits held out, seed 5), trained as the study trains, then
512 samples by the probability-flow ODE (Heun, 24 steps) and by the reverse SDE
(exponential Euler-Maruyama, 200 steps), both uniform in log-SNR from
``sigma/alpha = 10`` to ``0.01``. Quality ratio: median distance of the samples to
their nearest held-out digit over that of the S1 digits (1 is data-like), with a
bootstrap 95% interval (1000 resamples); memorised fraction by the audit's rule.

Usage::

    python benchmarks/bench_learn_quality.py                      # the whole ladder
    python benchmarks/bench_learn_quality.py --rungs 4            # one rung (0-based)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: (level law, convolutions per level, updates, EMA decay): the ladder measured.
RUNGS = [("log_uniform", 1, 2000, 0.998), ("log_normal", 1, 2000, 0.998),
         ("log_normal", 1, 10000, 0.999), ("log_normal", 2, 10000, 0.999),
         ("log_normal", 2, 20000, 0.999)]


def main():
    from scipy.spatial import cKDTree

    import numdiff as nd
    from numdiff.data import digits, disjoint_splits
    from numdiff.learn import NetworkScore
    from validation.studies import trained_denoisers as study
    from validation.studies.trained_measures import quality
    from validation.studies.trained_nets import ou_times, train_net

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rungs", type=int, nargs="+", default=list(range(len(RUNGS))))
    parser.add_argument("--n", type=int, default=700)
    args = parser.parse_args()
    cfg = study.STUDY.config("default")["digits"]
    data = digits()
    flat = np.asarray(data.images).reshape(len(data.labels), -1)
    s1, _, held = disjoint_splits(len(flat), args.n, cfg["n_heldout"], rng=cfg["split_seed"],
                                  labels=data.labels)
    tree, train = cKDTree(flat[held]), flat[s1]
    real = tree.query(train)[0]
    T, delta = ou_times(10.0, 0.01)
    print("law          blocks  updates  train s  ODE ratio [95%]         SDE ratio [95%]"
          "         memorised (ODE, SDE)")
    for i in args.rungs:
        law, blocks, steps, ema = RUNGS[i]
        train_cfg = {**cfg["train"], "steps": steps, "eval_every": steps // 4,
                     "level_law": law, "ema_decay": ema}
        t0 = time.perf_counter()
        trained, _ = train_net(train, {**cfg["net"], "blocks": blocks}, train_cfg)
        seconds = time.perf_counter() - t0
        model = NetworkScore(trained, nd.OU(), data=train)
        rng = np.random.default_rng(0)
        cells, memorised = [], []
        for process, solver, n_steps in (("ode", "heun", 24), ("sde", "exp_em", 200)):
            x = nd.sample(model, 512, T=T, delta=delta, steps=n_steps, process=process,
                          solver=solver, grid="uniform_lambda", rng=7, progress=False).x
            pair = {"held_distance": tree.query(x)[0], "real_distance": real}
            cells.append("{:.3f} [{:.3f}, {:.3f}]".format(*quality(pair, rng)))
            memorised.append(f"{nd.metrics.memorized_fraction(x, train):.3f}")
        print(f"{law:12s} {blocks:6d} {steps:8d} {seconds:8.0f}  {cells[0]:22s}  "
              f"{cells[1]:22s}  {', '.join(memorised)}", flush=True)


if __name__ == "__main__":
    main()
