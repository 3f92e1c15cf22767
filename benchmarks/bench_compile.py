"""Cold first-call time of each public path: Numba compiling with an empty cache.

Each path runs in a fresh Python process whose ``NUMBA_CACHE_DIR`` is a new empty
directory (Numba then neither reads nor writes the ``__pycache__`` caches of the
package). The child times ``import numdiff``, the first call (compilation and a
tiny run), and a second call with the same types (the run alone); the
difference is what a new user, or CI on a clean clone, waits for on that path.
With ``--warm`` each path runs a second time in another fresh process on the
cache the first one filled (loading instead of compiling).

The target is no path over ``TARGET_S`` (10 s) of CPU time: compiling is
serial, so on an idle host the wall time is about the CPU time, and on a
loaded one the CPU time is the steadier measure. Numba's ``numba:compile``
events say where the time goes: per jitted function
its number of compiled specialisations and its compile time less that of the
functions it called (compiled nested inside it).

Usage::

    python benchmarks/bench_compile.py                 # every path, table + top functions
    python benchmarks/bench_compile.py --warm          # also the load from a filled cache
    python benchmarks/bench_compile.py --paths knn_d64 # some paths only
    python benchmarks/bench_compile.py --trees ../before .   # two checkouts, path by path

With ``--trees`` each path runs once per checkout (its ``numdiff`` first on the
child's ``PYTHONPATH``), back to back, so that both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict


def _points(rng, d, n=400, m=16):
    return rng.standard_normal((n, d)), rng.standard_normal((m, d))


def _score(nd, rng, d, pruning, n=400):
    data, x = _points(rng, d, n)
    f = nd.EmpiricalScore(data, nd.OU())
    f.pruning = pruning
    return f, x


def _denoise(d):
    def setup(nd, rng):
        f, x = _score(nd, rng, d, "off")
        return lambda: f.denoise(0.5, x)

    return setup


def _pruned(nd, rng):
    f, _ = _score(nd, rng, 2, "always", n=4000)
    x = f.data[:16] + 1e-3 * rng.standard_normal((16, 2))
    return lambda: f.denoise(1e-4, x)


def _pruned_auto(nd, rng):
    # The default mode: enough queries to build the index, the gate's survey, the merge.
    f, _ = _score(nd, rng, 2, "auto", n=4000)
    x = f.data[:256] + 1e-3 * rng.standard_normal((256, 2))
    return lambda: f.denoise(1e-4, x)


def _divergence(nd, rng):
    f, x = _score(nd, rng, 2, "off")
    return lambda: f.divergence(0.5, x)


def _knn(d):
    def setup(nd, rng):
        data, x = _points(rng, d, m=100)  # >= 64 queries: the float32 tier too
        return lambda: nd.nearest_neighbors(data, x, 2)

    return setup


def _sample(nd, rng):
    f, _ = _score(nd, rng, 2, "auto")
    return lambda: nd.sample(f, 8, T=1.0, delta=0.01, steps=1, rng=0)


# The target for every path's cold first call, on the development machine.
TARGET_S = 10.0

# name: (description, setup returning the call); small sizes, so that the run is short.
PATHS = {
    "denoise_d2": ("dense denoise, d = 2", _denoise(2)),
    "denoise_d64": ("dense denoise, d = 64", _denoise(64)),
    "denoise_pruned": ("pruned denoise, d = 2", _pruned),
    "denoise_pruned_auto": ("pruned denoise, d = 2, auto", _pruned_auto),
    "divergence": ("divergence, d = 2", _divergence),
    "knn_d2": ("nearest_neighbors, d = 2", _knn(2)),
    "knn_d64": ("nearest_neighbors, d = 64", _knn(64)),
    "sample_step": ("nd.sample, one step, d = 2", _sample),
}


def child(name):
    """Run one path in this process; print a JSON record."""
    import numba.core.event as ev
    import numpy as np

    start = time.perf_counter()
    import numdiff as nd

    import_s = time.perf_counter() - start
    setup = PATHS[name][1]
    with ev.install_recorder("numba:compile") as rec:
        start, start_cpu = time.perf_counter(), time.process_time()
        setup(nd, np.random.default_rng(0))()
        first_s, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    start = time.perf_counter()
    setup(nd, np.random.default_rng(0))()
    second_s = time.perf_counter() - start
    print(json.dumps({"import": import_s, "first": first_s, "first_cpu": first_cpu,
                      "second": second_s,
                      "functions": _self_times(rec.buffer)}))


def _self_times(buffer):
    """Per jitted function: specialisations compiled and compile time less nested ones."""
    stack, out = [], defaultdict(lambda: [0, 0.0])
    for stamp, event in buffer:
        if event.is_start:
            stack.append([stamp, 0.0])
            continue
        begun, nested = stack.pop()
        total = stamp - begun
        disp = event.data["dispatcher"]
        key = f"{disp.py_func.__module__}.{disp.py_func.__qualname__}"
        out[key][0] += 1
        out[key][1] += total - nested
        if stack:
            stack[-1][1] += total
    return dict(out)


def run_path(name, cache_dir, tree=None):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name], env=env,
                          capture_output=True, text=True, check=False, cwd=tree)
    if proc.returncode:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--warm", action="store_true", help="also load from the filled cache")
    parser.add_argument("--top", type=int, default=6, help="functions listed per path")
    parser.add_argument("--trees", nargs="+", metavar="DIR",
                        help="checkouts to compare, each path run in each in turn")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print("seconds; one fresh process and an empty Numba cache per path; 'compile' = first"
          " call - second call; 'cpu' = the first call's CPU time (compiling is serial: on a"
          " loaded host it varies less than the wall time); 'specs' = specialisations compiled")
    trees = [os.path.abspath(tree) for tree in args.trees] if args.trees else [None]
    width = 28 + (max(len(os.path.basename(t)) for t in trees) + 3 if args.trees else 0)
    head = (f"{'path':<{width}} {'import':>7} {'first':>7} {'cpu':>7} {'second':>7}"
            f" {'compile':>8} {'specs':>6}")
    print(head + (f" {'warm 1st':>9}" if args.warm else ""))
    details, over = {}, []
    for name in args.paths:
        for tree in trees:
            label = PATHS[name][0] + (f" [{os.path.basename(tree)}]" if tree else "")
            with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache_dir:
                rec = run_path(name, cache_dir, tree)
                warm = run_path(name, cache_dir, tree) if args.warm else None
            funcs = rec["functions"]
            n_spec = sum(count for count, _ in funcs.values())
            line = (f"{label:<{width}} {rec['import']:7.2f} {rec['first']:7.2f} "
                    f"{rec['first_cpu']:7.2f} {rec['second']:7.3f}"
                    f" {rec['first'] - rec['second']:8.2f} {n_spec:6d}")
            if warm:
                line += f" {warm['first']:9.2f}"
            print(line, flush=True)
            details[label] = funcs
            if rec["first_cpu"] > TARGET_S:
                over.append(label)
    print(f"target: no first call over {TARGET_S:.0f} s of CPU time: "
          + ("met" if not over else "NOT met (" + ", ".join(over) + ")"))
    print(f"\nWhere the compile time goes (top {args.top} per path: self seconds,"
          " specialisations)")
    for label, funcs in details.items():
        ranked = sorted(funcs.items(), key=lambda item: -item[1][1])[: args.top]
        total = sum(sec for _, sec in funcs.values())
        print(f"{label} (sum {total:.1f} s over {len(funcs)} functions):")
        for func, (count, sec) in ranked:
            print(f"    {sec:6.2f} s  x{count}  {func}")


if __name__ == "__main__":
    main()
