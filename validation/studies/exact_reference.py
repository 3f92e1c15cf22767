"""Study 6: numdiff against exact references -- transitions, flows, moments, density.

The convergence-order study compares most solvers with themselves on finer
grids, and the memorization studies with exact samples of ``p_delta`` through
coarse statistics; neither would notice a sampler that converges to a slightly
wrong law at first order, or a log-density that is off by a constant. Here
numdiff is compared with closed forms that hold for every grid:

* **Exact transitions, one data point** (``N = 1``, where the denoiser is
  constant): the exponential Euler-Maruyama step *is* the exact Gaussian
  transition of the reverse SDE (``theory.flows.gaussian_reverse_transition``),
  and DDIM and DPM-Solver++(2M) *are* the exact probability-flow map
  (``theory.flows.gaussian_pf_flow``), on any grid. numdiff's sampler, driven by
  given standard normals, is compared path by path with the chain of exact
  transitions driven by the same normals, on a grid uniform in ``t`` (steps of
  very different sizes in ``lambda``), for three schedules (OU, VPLinear and
  a custom one, neither VP nor VE). The error is measured in rounding units
  ``eps max |x|`` and held to 16 of them: each step rounds a few terms of size
  ``|x|`` and the steps contract, so over 24 steps the errors stay at a few
  units (about one is achieved).
* **The published recursion**: DPM-Solver++(2M) against the recursion of
  Lu et al. (2022, Algorithm 2), written here independently (``lambda`` from
  ``alpha`` and ``sigma^2``), on Gaussian data and a grid whose steps in
  ``lambda`` alternate ``h`` and ``3 h``. Swapping ``h / h_prev`` for its
  inverse keeps the method second order (the leading local errors telescope
  over any grid), so neither the order nor the error against the exact flow
  shows it; the recursion does, to rounding (units ``eps steps max |x|``).
* **Moments of the output law**: ``nd.sample`` end to end, with its own noise,
  from exact samples of ``p_T``; sample mean and variance per coordinate against
  the exact ``p_delta`` (``theory.flows.gaussian_marginal``), as z-scores (the
  variance's standard error is ``v sqrt(2 / (n - 1))``). For ``N = 1`` with the
  exact solvers; for Gaussian data with the second-order solvers on 128 steps
  (64 in the quick run) uniform in ``lambda``, whose deterministic bias is below
  0.2 standard error at either sample size (computed by exact moment
  propagation, in the table).
* **The mixture density**: ``EmpiricalScore.log_density`` integrates to 1
  (``scipy.integrate.quad`` in ``d = 1``, breakpoints at the component means),
  and equals ``theory.mixture.mixture_logpdf`` at the Figure-4 grid in
  ``d = 1`` and at exact samples in ``d = 40`` (numdiff's BLAS path) for
  ``sigma^2`` from ``1e-6`` to 0.18; the denoiser equals
  ``theory.mixture.mixture_denoise`` there too. Errors in rounding units of
  the quantity's condition: ``eps (1 + |log p| + |x| |score| + (d/2)
  |log(2 pi sigma^2)|)`` for the log-density (the rounding of ``x`` alone moves
  ``log p`` by ``eps |x| |score|``), ``eps max |x_k|`` for the denoiser.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import quad

import numdiff as nd
from theory.flows import gaussian_marginal, gaussian_pf_flow
from theory.mixture import mixture_denoise, mixture_logpdf, mixture_sample, mixture_score

from ..claims import at_most, within
from ..orders import MEAN, SCHEDULES, VAR, GaussianScore, ratio_grids
from ..report import markdown_table
from ..study import Study, Summary
from .common import SE_BAND, ou_alpha_sigma2
from .reference_solvers import dpmpp_2m_recursion, exact_chain

EPS = float(np.finfo(np.float64).eps)

#: Solvers that are exact for one data point: (process, solver) -> exact reference.
EXACT_N1 = {("sde", "exp_em"): "transition", ("ode", "ddim"): "flow",
            ("ode", "dpmpp_2m"): "flow"}
#: Second-order solvers checked on Gaussian data (their bias is below the noise).
SECOND_ORDER = (("sde", "heun"), ("ode", "heun"), ("ode", "dpmpp_2m"))


# -- exact transitions, N = 1 ------------------------------------------------------------------


def transition_cell(config, seed):
    """Path-by-path error of the solvers that are exact for ``N = 1``, per schedule."""
    rng = np.random.default_rng(seed)
    n, steps, delta = config["n"], config["steps"], config["delta"]
    out = {}
    for sname in config["schedules"]:
        factory, T = SCHEDULES[sname]
        schedule = factory()
        model = nd.EmpiricalScore(MEAN[None, :], schedule)
        mean_T, var_T = gaussian_marginal(T, MEAN, 0.0, schedule)
        x_T = mean_T + np.sqrt(var_T) * rng.standard_normal((n, MEAN.size))
        grid = nd.grids.uniform_t(schedule, T, delta, steps)
        z = rng.standard_normal((steps, n, MEAN.size))
        for (process, name), kind in EXACT_N1.items():
            kw = {"noise": z} if process == "sde" else {}
            x = nd.sample(model, n, T=T, delta=delta, steps=steps, process=process, solver=name,
                          grid=grid, x_T=x_T, **kw).x
            if kind == "transition":
                ref = exact_chain(x_T, grid, z, MEAN, schedule)
            else:
                ref = gaussian_pf_flow(x_T, T, delta, MEAN, 0.0, schedule)
            unit = EPS * max(1.0, float(np.abs(x_T).max()), float(np.abs(ref).max()))
            out[f"{name} {sname}"] = float(np.abs(x - ref).max() / unit)
        out[f"dpmpp_2m recursion {sname}"] = _recursion_units(schedule, T, x_T, config)
    return out


def _recursion_units(schedule, T, x_T, config):
    """numdiff's DPM-Solver++(2M) against the published recursion, on Gaussian data and a
    grid whose step ratios alternate 3 and 1/3 (where the history weight matters)."""
    steps, delta = config["steps"], config["delta"]
    model = GaussianScore(MEAN, VAR, schedule)
    grid = ratio_grids(schedule, T, delta, [steps])[steps]
    x = nd.sample(model, len(x_T), T=T, delta=delta, steps=steps, process="ode",
                  solver="dpmpp_2m", grid=grid, x_T=x_T).x
    ref = dpmpp_2m_recursion(model.denoise, schedule, grid, x_T)
    return float(np.abs(x - ref).max() / (EPS * steps * max(1.0, float(np.abs(ref).max()))))


# -- moments of the output law ----------------------------------------------------------------


def _moment_z(x, mean, var):
    """Largest |z| of the sample mean and variance per coordinate against the exact law."""
    n = x.shape[0]
    z_mean = (x.mean(axis=0) - mean) / np.sqrt(var / n)
    z_var = (x.var(axis=0, ddof=1) - var) / (var * np.sqrt(2.0 / (n - 1)))
    return float(np.max(np.abs(np.concatenate([z_mean, z_var]))))


def _propagated_bias(process, name, model, grid, mean_T, var_T, mean_d, var_d):
    """The scheme's own bias of the output mean and variance, exactly.

    For a score model with an affine denoiser (Gaussian data, one data point)
    every step is affine in the state and the noise, so the output is
    ``gain x_T + shift + sum_i c_i z_i`` per coordinate; the gain and shift
    come from pushing the points 0 and 1 through the whole run (multistep
    states included), the noise variance from each SDE step's coefficients.

    Returns
    -------
    (ndarray, ndarray), shape (d,) each
        ``|mean error| / sqrt(var_d)`` and ``|variance error| / (sqrt(2) var_d)``:
        the biases in units of the Monte Carlo s.e. of a single sample.
    """
    solver = nd.solvers.SOLVERS[(process, name)]
    dim = mean_T.size
    zero, one = np.zeros((1, dim)), np.ones((1, dim))
    noise = zero if process == "sde" else None
    x0, x1, s0, s1 = zero, one, None, None
    var_noise = np.zeros(dim)
    for iv in nd.solvers.intervals(model.schedule, grid):
        y0, s0 = solver.step(model, iv, x0, noise, s0)
        y1, s1 = solver.step(model, iv, x1, noise, s1)
        if process == "sde":  # stateless steps: this step's gain and noise coefficient
            base = solver.step(model, iv, zero, zero)[0][0]
            gain_i = solver.step(model, iv, one, zero)[0][0] - base
            coef = solver.step(model, iv, zero, one)[0][0] - base
            var_noise = gain_i**2 * var_noise + coef**2
        x0, x1 = y0, y1
    gain, shift = (x1 - x0)[0], x0[0]
    mean_out, var_out = gain * mean_T + shift, gain**2 * var_T + var_noise
    return (np.abs(mean_out - mean_d) / np.sqrt(var_d),
            np.abs(var_out - var_d) / (np.sqrt(2) * var_d))


def moments_cell(config, seed):
    """Sample moments of ``nd.sample``'s output against the exact law, per case."""
    rng = np.random.default_rng(seed)
    n, delta = config["n"], config["delta"]
    out = {}
    for sname in config["schedules"]:
        factory, T = SCHEDULES[sname]
        schedule = factory()
        grids = ratio_grids(schedule, T, delta, [config["steps_n1"], config["steps_gauss"]],
                            ratio=1.0)
        cases = [("N=1", p, s, 0.0, config["steps_n1"]) for p, s in EXACT_N1]
        cases += [("gauss", p, s, VAR, config["steps_gauss"]) for p, s in SECOND_ORDER]
        for data, process, name, var, steps in cases:
            model = (nd.EmpiricalScore(MEAN[None, :], schedule) if data == "N=1"
                     else GaussianScore(MEAN, var, schedule))
            mean_T, var_T = gaussian_marginal(T, MEAN, var, schedule)
            mean_d, var_d = gaussian_marginal(delta, MEAN, var, schedule)
            x_T = mean_T + np.sqrt(var_T) * rng.standard_normal((n, MEAN.size))
            x = nd.sample(model, n, T=T, delta=delta, steps=steps, process=process, solver=name,
                          grid=grids[steps], x_T=x_T, rng=rng).x
            bias_m, bias_v = _propagated_bias(process, name, model, grids[steps], mean_T, var_T,
                                              mean_d, var_d)
            out[f"{process} {name} {data} {sname}"] = {
                "z": _moment_z(x, mean_d, var_d),
                # The scheme's own bias, in s.e. at this n (sqrt(n) times per-sample units).
                "bias_se": float(np.sqrt(n) * max(bias_m.max(), bias_v.max())),
            }
    return out


# -- the mixture density ----------------------------------------------------------------------


def _logpdf_units(f, x, data, t):
    """Largest error of ``f.log_density`` against the dense reference, in condition units."""
    alpha, sigma2 = ou_alpha_sigma2(t)
    ref = mixture_logpdf(x, data, alpha, sigma2)
    score = np.linalg.norm(mixture_score(x, data, alpha, sigma2), axis=1)
    dim = data.shape[1]
    unit = EPS * (1.0 + np.abs(ref) + np.linalg.norm(x, axis=1) * score
                  + 0.5 * dim * abs(np.log(2 * np.pi * sigma2)) + np.log(len(data)))
    return float(np.max(np.abs(f.log_density(t, x) - ref) / unit))


def _integral(f, data, t):
    """``int exp(log_density)`` over the line (d = 1) by adaptive quadrature."""
    alpha, sigma2 = ou_alpha_sigma2(t)
    centres = np.sort(alpha * data[:, 0])
    width = 12.0 * np.sqrt(sigma2)  # the mass beyond 12 s.d. is below 1e-32

    def density(u):
        return float(np.exp(f.log_density(t, np.array([[u]]))[0]))

    value, err = quad(density, centres[0] - width, centres[-1] + width, points=centres,
                      epsabs=1e-14, epsrel=1e-13, limit=400)
    return value, err


def density_cell(config, seed):
    """log-density normalisation and values, denoiser values, against theory."""
    rng = np.random.default_rng(seed)
    low = config["low_d"]
    data = rng.standard_normal((low["n_data"], 1))
    f = nd.EmpiricalScore(data, nd.OU())
    x = np.linspace(-low["x_max"], low["x_max"], low["points"])[:, None]
    integrals, quad_err, units_1d = [], [], 0.0
    for t in low["times"]:
        value, err = _integral(f, data, t)
        integrals.append(value)
        quad_err.append(err)
        units_1d = max(units_1d, _logpdf_units(f, x, data, t))
    high = config["high_d"]
    data_h = rng.standard_normal((high["n_data"], high["d"]))
    g = nd.EmpiricalScore(data_h, nd.OU())
    units_hd, denoise_units = 0.0, 0.0
    for t in high["times"]:
        alpha, sigma2 = ou_alpha_sigma2(t)
        xs = mixture_sample(high["n"], data_h, alpha, sigma2, rng)
        units_hd = max(units_hd, _logpdf_units(g, xs, data_h, t))
        ref = mixture_denoise(xs, data_h, alpha, sigma2)
        denoise_units = max(denoise_units, float(np.max(np.abs(g.denoise(t, xs) - ref))
                                                 / (EPS * np.abs(data_h).max())))
    return {"integrals": integrals, "quad_err": quad_err, "logpdf_units_1d": units_1d,
            "logpdf_units_hd": units_hd, "denoise_units_hd": denoise_units}


# -- claims -----------------------------------------------------------------------------------


def cells(config):
    return [
        ("exact transitions N=1", transition_cell, config["transitions"]),
        ("output moments", moments_cell, config["moments"]),
        ("mixture density", density_cell, config["density"]),
    ]


def _transition_claims(res, config):
    bound = config["transitions"]["rounding_units"]
    claims = []
    for (process, name), kind in EXACT_N1.items():
        worst = max(v for k, v in res.items() if k.startswith(f"{name} ") and "recursion" not in k)
        ref = ("the exact reverse transitions on the same normals" if kind == "transition"
               else "the exact probability-flow map")
        claims.append(at_most(
            f"{name} ({process}) with N=1 = {ref}, path by path (rounding units)", bound, worst,
            detail=f"max over {len(config['transitions']['schedules'])} schedules of "
                   f"max |x - exact| / (eps max|x|), uniform-t grid with "
                   f"{config['transitions']['steps']} steps; bound {bound:g} units"))
    steps = config["transitions"]["steps"]
    claims.append(at_most(
        "dpmpp_2m (ode) = the published DPM-Solver++(2M) recursion, step ratios 3 and 1/3 "
        "(rounding units)", bound,
        max(v for k, v in res.items() if k.startswith("dpmpp_2m recursion")),
        detail=f"Gaussian data, {steps} steps alternating h and 3h in lambda, "
               f"{len(config['transitions']['schedules'])} schedules; unit eps steps max|x| "
               "(the two codes round differently at every step); the order on such grids "
               "cannot tell h / h_prev from its inverse (the leading errors telescope); "
               f"bound {bound:g}"))
    return claims


def _moment_claims(res, config):
    n = config["moments"]["n"]
    claims = []
    for data, cases in (("N=1", EXACT_N1), ("gauss", SECOND_ORDER)):
        for process, name in cases:
            rows = {k: v for k, v in res.items() if k.startswith(f"{process} {name} {data} ")}
            bias = max(v["bias_se"] for v in rows.values())
            what = "one data point" if data == "N=1" else "Gaussian data"
            claims.append(at_most(
                f"output mean and variance of nd.sample = exact p_delta, {name} ({process}), "
                f"{what}, max |z|", SE_BAND, max(v["z"] for v in rows.values()),
                detectable=SE_BAND,
                detail=f"n={n} from exact p_T, {len(rows)} schedules x 2 coordinates x "
                       f"(mean, variance); the scheme's own bias is {bias:.2g} s.e. at most; "
                       f"detectable: {SE_BAND} s.e., a relative variance bias of "
                       f"{SE_BAND * np.sqrt(2 / n):.2g}"))
    return claims


def _density_claims(res, config):
    bound = config["density"]["rounding_units"]
    err = np.abs(np.asarray(res["integrals"]) - 1.0)
    worst = int(np.argmax(err))
    band = config["density"]["integral_band"]
    times = config["density"]["low_d"]["times"]
    return [
        within(
            "integral of exp(log_density) = 1 (d=1, worst t)", 1.0, res["integrals"][worst],
            band, res["quad_err"][worst],
            detail=f"scipy.integrate.quad over +-12 s.d. around the {len(times)}-point data at "
                   f"t in {times}; uncertainty: quad's error estimate; band {band:g}, about "
                   "100 times it"),
        at_most(
            "log_density = theory.mixture_logpdf, d=1 grid (condition units)", bound,
            res["logpdf_units_1d"],
            detail="Figure-4 grid at the same times; unit eps (1 + |log p| + |x| |score| + "
                   f"(d/2)|log 2 pi sigma^2|); bound {bound:g}"),
        at_most(
            "log_density = theory.mixture_logpdf, d=40 samples (condition units)", bound,
            res["logpdf_units_hd"],
            detail=f"exact samples at t in {config['density']['high_d']['times']} (sigma^2 "
                   f"from 1e-6); numdiff's BLAS path; bound {bound:g}"),
        at_most(
            "denoise = theory.mixture_denoise, d=40 samples (rounding units)", bound,
            res["denoise_units_hd"],
            detail=f"same points; unit eps max|x_k|; bound {bound:g}"),
    ]


def summarise(cell_results, config, outdir):
    res = {r.label: r.result for r in cell_results}
    claims = (_transition_claims(res["exact transitions N=1"], config)
              + _moment_claims(res["output moments"], config)
              + _density_claims(res["mixture density"], config))
    rows = [(k, v["z"], v["bias_se"]) for k, v in res["output moments"].items()]
    tables = [
        "Path-by-path errors of the exact solvers for N = 1, in rounding units:\n\n"
        + markdown_table(("solver, schedule", "max error / (eps max|x|)"),
                         list(res["exact transitions N=1"].items())),
        "Output moments: largest |z| of the sample mean and variance, and the scheme's own "
        "bias (exact moment propagation) in the same standard errors:\n\n"
        + markdown_table(("process, solver, data, schedule", "max |z|", "bias (s.e.)"), rows),
    ]
    return Summary(claims, [], tables)


_DENSITY = {
    "low_d": {"n_data": 5, "times": [0.01, 0.05, 0.2, 1.0], "x_max": 3.0, "points": 601},
    "high_d": {"d": 40, "n_data": 50, "n": 2000, "times": [5e-7, 1e-3, 0.1]},
    "rounding_units": 16.0, "integral_band": 1e-11,
}
_TRANSITIONS = {"n": 64, "steps": 24, "delta": 1e-2, "schedules": list(SCHEDULES),
                "rounding_units": 16.0}

STUDY = Study(
    name="exact_reference",
    title="numdiff against exact references: transitions, flows, moments, density",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={
        "seed": 3106, "transitions": _TRANSITIONS, "density": _DENSITY,
        "moments": {"n": 50_000, "delta": 1e-2, "steps_n1": 16, "steps_gauss": 128,
                    "schedules": list(SCHEDULES)},
    },
    quick={
        "seed": 3106, "transitions": _TRANSITIONS, "density": _DENSITY,
        "moments": {"n": 10_000, "delta": 1e-2, "steps_n1": 16, "steps_gauss": 64,
                    "schedules": list(SCHEDULES)},
    },
)
