"""Cost and quality of the trained denoisers of numdiff.learn on this machine.

Three parts, run separately (each prints its numbers; the machine is shared, so
times are pessimistic and only ratios within one run compare):

* ``timing``: milliseconds per training update (median of interleaved
  repeats) for the chosen sizes, on 8x8 digits and on random 28x28 images;
* ``train``: one training run on half of the 8x8 digits (N = 898), the other
  half held out; writes the weights ``.npz`` (configuration and per-level loss
  inside);
* ``sample``: probability-flow ODE (Heun) or reverse-SDE (``--process sde``,
  exponential Euler-Maruyama) samples of those weights (on a log-SNR grid,
  sigma/alpha from about 10 to about 0.01), their nearest-neighbour
  distances to the held-out half against held-out-to-training distances, the
  memorised fraction, and a PNG grid of the samples.

Usage::

    python benchmarks/bench_learn.py timing
    python benchmarks/bench_learn.py train --steps 4500 --out digits_net.npz
    python benchmarks/bench_learn.py sample --weights digits_net.npz --png samples.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np

DIGITS_SEED = 0


def digits_split():
    """The 8x8 digits scaled to [0, 1] as the validation does (/16), split in two halves."""
    from sklearn.datasets import load_digits

    full = load_digits().data / 16.0
    perm = np.random.default_rng(DIGITS_SEED).permutation(len(full))
    half = len(full) // 2
    return full[perm[:half]], full[perm[half:]]


def digits_net(channels=(32, 64), blocks=2, padding="zero"):
    from numdiff.learn import NetConfig

    train, _ = digits_split()
    return NetConfig(image_shape=(8, 8, 1), channels=channels, blocks=blocks, padding=padding,
                     data_scale=float(np.sqrt(np.mean(train**2))))


def timing(args):
    import jax
    import jax.numpy as jnp

    from numdiff.learn import NetConfig, TrainConfig
    from numdiff.learn.network import init_params
    from numdiff.learn.training import _optimizer, denoising_loss

    train_digits, _ = digits_split()
    cases = [("8x8 digits", (8, 8, 1), (32,), 4), ("8x8 digits", (8, 8, 1), (32, 64), 2),
             ("8x8 digits", (8, 8, 1), (32, 64), 1), ("28x28 random", (28, 28, 1), (32, 64), 2)]
    steps = []
    for label, shape, chans, blocks in cases:
        net = NetConfig(image_shape=shape, channels=chans, blocks=blocks)
        cfg = TrainConfig(batch=args.batch)
        params = jax.tree_util.tree_map(jnp.asarray, init_params(net, 0))
        opt = _optimizer(cfg)
        rng = np.random.default_rng(0)
        if shape == (8, 8, 1):
            x0 = train_digits[rng.integers(len(train_digits), size=args.batch)]
        else:
            x0 = rng.uniform(size=(args.batch, *shape))
        x0 = jnp.asarray(x0.reshape(args.batch, *shape), jnp.float32)
        s = jnp.asarray(np.exp(rng.uniform(np.log(0.005), np.log(20), args.batch)), jnp.float32)
        z = jnp.asarray(rng.standard_normal(x0.shape), jnp.float32)

        @jax.jit
        def update(params, state, x0=x0, s=s, z=z, net=net, opt=opt):
            loss, grads = jax.value_and_grad(denoising_loss)(params, net, x0, s, z)
            upd, state = opt.update(grads, state, params)
            import optax

            return optax.apply_updates(params, upd), state, loss

        state = opt.init(params)
        jax.block_until_ready(update(params, state))  # compile
        steps.append((label, net, update, params, state))
    times = {i: [] for i in range(len(steps))}
    for _ in range(args.repeats):  # interleaved, so a load change hits every case alike
        for i, (_, _, update, params, state) in enumerate(steps):
            t0 = time.perf_counter()
            for _ in range(args.inner):
                params, state, loss = update(params, state)
            jax.block_until_ready(loss)
            times[i].append((time.perf_counter() - t0) / args.inner * 1e3)
    base = np.median(times[0])
    print(f"batch {args.batch}, {args.repeats} interleaved repeats of {args.inner} updates")
    for i, (label, net, *_rest) in enumerate(steps):
        med = np.median(times[i])
        print(f"{label:14s} channels {net.channels!s:9s} blocks {net.blocks}: "
              f"{med:7.1f} ms/update (median; range {min(times[i]):.1f}-{max(times[i]):.1f}), "
              f"{med / base:5.2f}x the first row")


def train(args):
    from numdiff.learn import TrainConfig
    from numdiff.learn import train as train_net

    train_digits, held = digits_split()
    net = digits_net(tuple(args.channels), args.blocks, args.padding)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, warmup=200,
                      ema_decay=args.ema, s_min=0.005, s_max=20.0, seed=args.seed,
                      eval_every=args.eval_every, eval_levels=12, eval_size=256)
    t0 = time.perf_counter()

    def log(step, mse):
        print(f"step {step:6d}  {time.perf_counter() - t0:7.1f} s  mse/level "
              + " ".join(f"{m:.4f}" for m in mse), flush=True)

    result = train_net(train_digits, net, cfg, holdout=held, log=log)
    result.save(args.out)
    h = result.history
    print(f"trained {args.steps} updates in {result.seconds:.1f} s "
          f"({1e3 * result.seconds / args.steps:.1f} ms/update incl. evaluation)")
    print("level s      train mse   held-out mse  (per pixel, EMA weights, last evaluation)")
    for s, a, b in zip(h["levels"], h["train_mse"][-1], h["holdout_mse"][-1]):
        print(f"{s:9.4f}  {a:10.5f}  {b:10.5f}")


def sample(args):
    from scipy.spatial import cKDTree

    import numdiff as nd
    from numdiff.learn import NetworkScore, load

    train_digits, held = digits_split()
    trained = load(args.weights)
    schedule = nd.OU()
    model = NetworkScore(trained, schedule, data=train_digits)
    # The network sees only s = sigma / alpha = exp(-lambda): pick the times by lambda.
    T = float(schedule.lam_inv(-np.log(args.s_start)))
    delta = float(schedule.lam_inv(-np.log(args.s_end)))
    t0 = time.perf_counter()
    # The reverse SDE's fresh noise corrects part of the net's error along the way: on
    # the 4500-update net its quality ratio is 1.27 against the ODE's 1.33 (docs/learn.md).
    solver = "heun" if args.process == "ode" else "exp_em"
    res = nd.sample(model, args.n, T=T, delta=delta, steps=args.steps, process=args.process,
                    solver=solver, grid="uniform_lambda", rng=args.seed)
    seconds = time.perf_counter() - t0
    x = np.clip(res.x, -0.5, 1.5)
    held_tree, train_tree = cKDTree(held), cKDTree(train_digits)
    d_sample_held = held_tree.query(res.x)[0]
    d_real_held = held_tree.query(train_digits[: args.n], k=1)[0]
    d_sample_train = train_tree.query(res.x, k=2)[0]
    d_held_train = train_tree.query(held[: args.n], k=1)[0]
    # A blob-maker for scale: samples of the Gaussian fitted to the training digits.
    fit = np.random.default_rng(args.seed).multivariate_normal(
        train_digits.mean(axis=0), np.cov(train_digits.T), size=args.n)
    d_fit_held = held_tree.query(fit)[0]
    memorised = nd.metrics.memorized_fraction(res.x, train_digits)
    print(f"{args.n} samples, {args.steps} {args.process} steps ({solver}), s from {args.s_start} to {args.s_end}: "
          f"{seconds:.1f} s, success {res.success}")
    print(f"nearest held-out distance: samples median {np.median(d_sample_held):.3f} "
          f"(q10 {np.quantile(d_sample_held, 0.1):.3f}, q90 {np.quantile(d_sample_held, 0.9):.3f}); "
          f"training digits median {np.median(d_real_held):.3f} "
          f"(q10 {np.quantile(d_real_held, 0.1):.3f}, q90 {np.quantile(d_real_held, 0.9):.3f})")
    print(f"Gaussian fit to the training digits (blobs): median {np.median(d_fit_held):.3f}")
    print(f"nearest training distance: samples median {np.median(d_sample_train[:, 0]):.3f}; "
          f"held-out digits median {np.median(d_held_train):.3f}; memorised fraction "
          f"(ratio < 1/3) {memorised:.3f}")
    print(f"sample pixel range [{res.x.min():.2f}, {res.x.max():.2f}], mean {res.x.mean():.3f} "
          f"(data mean {train_digits.mean():.3f})")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = 8
        fig, axes = plt.subplots(rows, 2 * rows + 1, figsize=(2 * rows + 1, rows))
        for i, ax in enumerate(axes.flat):
            r, c = divmod(i, 2 * rows + 1)
            ax.axis("off")
            if c < rows and r * rows + c < len(x):
                ax.imshow(x[r * rows + c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            elif c > rows:
                j = r * rows + c - rows - 1
                ax.imshow(held[j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        fig.suptitle(f"left: network samples ({args.process}, {solver}); right: held-out digits")
        fig.savefig(args.png, dpi=60)
        print(f"wrote {args.png}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("timing")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--inner", type=int, default=10)
    p = sub.add_parser("train")
    p.add_argument("--steps", type=int, default=4500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--padding", default="zero")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--out", default="digits_net.npz")
    p = sub.add_parser("sample")
    p.add_argument("--weights", default="digits_net.npz")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--process", choices=["ode", "sde"], default="ode",
                   help="probability-flow ODE (Heun) or reverse SDE (exponential Euler-Maruyama)")
    p.add_argument("--s-start", type=float, default=10.0)
    p.add_argument("--s-end", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--png", default="")
    args = parser.parse_args()
    {"timing": timing, "train": train, "sample": sample}[args.cmd](args)


if __name__ == "__main__":
    main()
