"""Fixed points, slow points, the speed map and Jacobian spectra of the one-step map (docs/method.md §2.1,
§5.3, §5.7).

The map has no biases, so F(c h) = c F(h) for c > 0 (input-free, or any input scaled with h):

* the origin is always a fixed point of the input-free map, and any other fixed point h* lies on a
  ray {c h*, c > 0} of fixed points, each with Jacobian eigenvalue exactly 1 along the ray;
* q(h) = ½‖F(h) − h‖² is homogeneous of degree 2, so minimising it collapses every start onto the
  origin. The finder therefore minimises the *relative* speed on the unit sphere,
  r(u) = ½‖F(u) − u‖², ‖u‖ = 1: its zeros are fixed rays and its small local minima slow directions;
* whether the origin attracts is decided by the growth of ‖h‖ under the input-free map from states
  of the orbit (the Jacobian at the origin is not defined: every pre-activation is 0 there).

With a constant input x* (``constant_input=``) the map relu(W_rec h + W_in x*) is not homogeneous and the
ordinary q(h) is minimised. The mean input of the trained networks is 0, where both coincide.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ._common import Result, argmax_labels, reference_pca, resolve, simulate

__all__ = ["FixedPoints", "fixed_points", "classify", "JacobianSpectra", "jacobian_spectra", "mobius",
           "critical_pairs"]


def mobius(eigenvalues: np.ndarray) -> np.ndarray:
    """(λ − 1) / (λ + 1): maps the unit circle onto the imaginary axis; |λ| > 1 ⇔ Re > 0 (docs/method.md §2.1).

    Parameters
    ----------
    eigenvalues : (...) complex array λ.

    Returns
    -------
    (...) complex array (λ − 1) / (λ + 1).
    """
    return (eigenvalues - 1) / (eigenvalues + 1)


def critical_pairs(eigenvalues: np.ndarray, re_limit: float = 0.1, im_floor: float = 0.06) -> np.ndarray:
    """Per row of eigenvalues (..., H): how many have Möbius image m with |Re m| < re_limit and
    Im m > im_floor (complex pairs near the unit circle, each pair counted once).

    Parameters
    ----------
    eigenvalues : (..., H) complex.
    re_limit : largest |Re m| of a critical pair.
    im_floor : smallest Im m of a critical pair.

    Returns
    -------
    (...,) integer counts.
    """
    m = mobius(eigenvalues)
    return ((np.abs(m.real) < re_limit) & (m.imag > im_floor)).sum(-1)


def classify(eigenvalues: np.ndarray, *, on_ray: bool = False, tol: float = 1e-3) -> str:
    """Stability class from Jacobian eigenvalues (|λ| relative to 1).

    ``on_ray``: the point lies on a ray of fixed points, and one eigenvalue 1 (along the ray) is
    dropped first; the class then reads "attracting ray", "saddle ray" or "repelling ray".
    Otherwise: "stable node", "stable spiral", "saddle", "unstable node", "unstable spiral",
    "marginal" (some |λ| within ``tol`` of 1 and none above).

    Parameters
    ----------
    eigenvalues : (H,) complex eigenvalues of a Jacobian.
    on_ray : the point lies on a ray of fixed points.
    tol : how close to 1 a modulus counts as marginal.

    Returns
    -------
    The class, one of the names above.
    """
    eig = np.asarray(eigenvalues)
    if on_ray and len(eig):
        eig = np.delete(eig, int(np.argmin(np.abs(eig - 1))))
    mod = np.abs(eig)
    above, below = (mod > 1 + tol).sum(), (mod < 1 - tol).sum()
    if on_ray:
        return "attracting ray" if above == 0 and below == len(eig) else (
            "repelling ray" if below == 0 else "saddle ray")
    if above and below:
        return "saddle"
    spiral = bool((np.abs(eig.imag) > 1e-9).any())
    if above == len(eig) and len(eig):
        return "unstable spiral" if spiral else "unstable node"
    if below == len(eig):
        return "stable spiral" if spiral else "stable node"
    return "marginal"


@dataclass
class FixedPoints(Result):
    """Fixed points, rays and slow points, with the speed map along the noisy orbit.

    points : one dict per distinct point: "kind" (fixed point / fixed ray / slow point / slow
        direction), "state" (H,) (a unit direction for rays and slow directions), "speed"
        ‖F(h) − h‖ (relative to ‖h‖ on the sphere), "eigenvalues" [[re, im], ...] by modulus,
        "stability", "count" (starts that ended there), "pc" (2,) position in the PC1–2 plane
    origin : for the input-free map: growth exponents of ‖h‖ (per step) from the starts and whether
        the origin attracts all of them
    orbit_pc, orbit_speed, orbit_relative_speed : (shown, 2), (shown,), (shown,) the speed map
        ‖F(h_t) − h_t‖ of the input-free map along the noisy orbit, and the same over ‖h_t‖
    """

    name = "fixed_points"
    mode: str
    n_initial: int
    iterations: int
    seed: int
    tolerance: float
    slow_tolerance: float
    points: list[dict[str, Any]]
    origin: dict[str, Any] | None
    orbit_pc: np.ndarray
    orbit_speed: np.ndarray
    orbit_relative_speed: np.ndarray
    outliers_dropped: int = 0
    constant_input: list[float] | None = field(default=None)

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for p in self.points:
            kinds[f"{p['kind']} ({p['stability']})"] = kinds.get(f"{p['kind']} ({p['stability']})", 0) + 1
        found = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "no other fixed or slow points"
        origin = ""
        if self.origin is not None:
            origin = ("origin attracts every start" if self.origin["attracting"] else
                      "origin does NOT attract every start") + \
                     f" (max growth {self.origin['max_growth_exponent']:.3f}/step); "
        slow = np.quantile(self.orbit_relative_speed, [0.1, 0.9])
        return (f"{origin}{found}; orbit relative speed 10-90%: {slow[0]:.3f}-{slow[1]:.3f}")


def fixed_points(run_or_model: Any, *, constant_input: np.ndarray | None = None, n_initial: int = 256,
                      iterations: int = 1000, lr: float = 0.01, tolerance: float = 1e-6,
                      slow_tolerance: float = 0.05, initial_states: np.ndarray | None = None,
                      orbit_steps: int = 30_000, shown: int = 2000, seed: int = 0) -> FixedPoints:
    """Find fixed and slow points of h ↦ relu(W_rec h + W_in x*) by batched minimisation.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    constant_input : (d,) constant input x*; None (default) for the input-free map, which is also the map at
        the mean input E[x] = 0 of the trained networks.
    n_initial : starts, taken from the noisy orbit (``orbit_steps`` steps, seeded) unless
        ``initial_states`` (n, H) are given.
    initial_states : (n, H) starts to use instead of orbit states.
    orbit_steps : length of the noisy orbit (starts, PCA basis, speed map).
    iterations, lr : Adam steps on all starts at once (learning rate decaying to 1 %), followed by
        least-squares Newton steps.
    tolerance : speed below which a point is fixed: ‖F(u) − u‖ on the unit sphere (input-free) or
        ‖F(h) − h‖ (with input).
    slow_tolerance : speed below which a non-fixed minimum is reported as slow.
    shown : orbit states kept for the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``FixedPoints``. Points are de-duplicated (directions with cosine > 1 − 1e-4, or states
    within 1e-3 (1 + ‖h‖)); starts whose minimum is not slow are dropped as outliers and counted.
    """
    model, _ = resolve(run_or_model)
    basis, orbit = reference_pca(model, steps=orbit_steps, seed=seed)
    rng = np.random.default_rng(stream(seed, "fixed_points", "starts"))
    if initial_states is None:
        starts = orbit[rng.choice(len(orbit), min(n_initial, len(orbit)), replace=False)]
    else:
        starts = np.asarray(initial_states, dtype=np.float32).reshape(-1, model.hidden)
    x = None
    if constant_input is not None:
        x = torch.as_tensor(np.asarray(constant_input, dtype=np.float32)).reshape(model.noise_dim)
    homogeneous = x is None or bool((model.preactivation(torch.zeros(model.hidden), x) == 0).all())
    final, speed = _minimise(model, torch.from_numpy(np.array(starts)), x, homogeneous, iterations, lr,
                             refine_below=slow_tolerance)
    points, dropped = _distinct_points(model, final, speed, x, homogeneous, tolerance, slow_tolerance, basis)

    origin = None
    if homogeneous:
        growth = _growth_exponents(model, torch.from_numpy(np.array(starts)))
        origin = {"growth_exponents": growth, "max_growth_exponent": float(np.max(growth)),
                  "attracting": bool(np.max(growth) < 0)}

    head = torch.from_numpy(orbit[:shown])
    with torch.no_grad():
        moved = model.step(head, None) - head
    orbit_speed = moved.norm(dim=1).numpy()
    relative = orbit_speed / np.maximum(head.norm(dim=1).numpy(), 1e-12)
    return FixedPoints("input-free" if input is None else "constant input", len(starts), iterations, seed,
                       tolerance, slow_tolerance, points, origin, basis.project(orbit[:shown])[:, :2], orbit_speed,
                       relative, dropped, None if constant_input is None else np.asarray(constant_input, dtype=float).tolist())


def _minimise(model, starts: torch.Tensor, x: torch.Tensor | None, homogeneous: bool, iterations: int, lr: float,
              refine_below: float, newton_steps: int = 20):
    """Adam on the sum of the per-start objectives (independent of each other), with a learning rate
    decaying linearly to 1 %, then Newton steps h ← h − (J − I)⁺ (F(h) − h) (least squares, so the
    singular direction along a ray does no harm), kept only where they lower the speed: the map
    is piecewise linear, so Newton lands on a fixed point once the activation pattern is right.
    Newton runs only on the points whose speed is below ``refine_below`` (the candidates).

    Returns the final points (n, H) (unit vectors when ``homogeneous``) and their speeds (n,).
    """
    model64 = copy.deepcopy(model).double()  # Newton in float64, F and J from the model itself
    x64 = None if x is None else x.double()

    def on_sphere(v: torch.Tensor) -> torch.Tensor:
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12) if homogeneous else v

    def residual(v: torch.Tensor) -> torch.Tensor:
        h = on_sphere(v)
        return model.step(h, x) - h

    v = on_sphere(starts.clone().float()).requires_grad_(True)
    optimizer = torch.optim.Adam([v], lr=lr)
    for k in range(iterations):
        optimizer.param_groups[0]["lr"] = lr * (1 - 0.99 * k / max(iterations, 1))
        optimizer.zero_grad(set_to_none=True)
        (0.5 * residual(v).pow(2).sum()).backward()
        optimizer.step()
        if homogeneous:
            with torch.no_grad():  # stay on the sphere so the step size keeps its meaning
                v /= v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    with torch.no_grad():
        final = on_sphere(v.detach()).double()
        eye = torch.eye(model.hidden, dtype=torch.float64)
        final_speed = (model64.step(final, x64) - final).norm(dim=1)
        chosen = final_speed <= refine_below
        h, speed = final[chosen], final_speed[chosen]
        for _ in range(newton_steps if len(h) else 0):
            r = model64.step(h, x64) - h
            jac = model64.jacobian(h, x64) - eye
            step = torch.linalg.lstsq(jac, -r.unsqueeze(-1)).solution.squeeze(-1)
            trial = h + step
            if homogeneous:
                trial = trial / trial.norm(dim=1, keepdim=True).clamp_min(1e-12)
            trial_speed = (model64.step(trial, x64) - trial).norm(dim=1)
            better = trial_speed < speed
            h = torch.where(better[:, None], trial, h)
            speed = torch.where(better, trial_speed, speed)
        final[chosen], final_speed[chosen] = h, speed
        return final.float(), final_speed.float()


def _distinct_points(model, final: torch.Tensor, speed: torch.Tensor, x: torch.Tensor | None, homogeneous: bool,
                     tolerance: float, slow_tolerance: float, basis) -> tuple[list[dict[str, Any]], int]:
    keep = speed <= slow_tolerance
    dropped = int((~keep).sum())
    order = torch.argsort(speed[keep])
    candidates, speeds = final[keep][order], speed[keep][order]
    distinct: list[dict[str, Any]] = []
    reps: list[torch.Tensor] = []
    for h, s in zip(candidates, speeds):
        if homogeneous and h.norm() < 1e-6:
            continue
        for k, rep in enumerate(reps):
            same = (torch.dot(h, rep) > 1 - 1e-4) if homogeneous else \
                ((h - rep).norm() < 1e-3 * (1 + rep.norm()))
            if same:
                distinct[k]["count"] += 1
                break
        else:
            reps.append(h)
            fixed = bool(s <= tolerance)
            jac = model.jacobian(h, x).detach().numpy()
            eig = np.linalg.eigvals(jac)
            eig = eig[np.argsort(-np.abs(eig))]
            kind = ("fixed ray" if fixed else "slow direction") if homogeneous else \
                ("fixed point" if fixed else "slow point")
            distinct.append({"kind": kind, "state": h.numpy(), "speed": float(s), "count": 1,
                             "eigenvalues": np.stack([eig.real, eig.imag], axis=1),
                             "stability": classify(eig, on_ray=homogeneous and fixed),
                             "pc": basis.project(h.numpy()[None])[0, :2]})
    return distinct, dropped


def _growth_exponents(model, starts: torch.Tensor, steps: int = 500, skip: int = 100, block: int = 5) -> np.ndarray:
    """Mean log growth of ‖h‖ per step under the input-free map, after ``skip`` steps (−inf if a run
    reaches exactly 0). Negative: the run decays to the origin.

    The map is positively homogeneous, so the growth over a stretch is log‖h_end‖ − log‖h_start‖
    whatever the scale; the runs go ``block`` steps at a time through the rollout engine and are
    renormalised in between, so that none overflows or underflows."""
    lengths = [min(block, skip - t) for t in range(0, skip, block)]
    lengths += [min(block, steps - t) for t in range(skip, steps, block)]
    with torch.no_grad():
        u = starts / starts.norm(dim=1, keepdim=True).clamp_min(1e-30)
        total = torch.zeros(len(u), dtype=torch.float64)
        done = 0
        for length in lengths:
            end = model.rollout(None, u, steps=length)[:, -1]
            norm = end.norm(dim=1)
            if done >= skip:
                total += torch.log(norm.double())
            u, done = end / norm.clamp_min(1e-30)[:, None], done + length
        return (total / (steps - skip)).numpy()


# --------------------------------------------------------------------------- Jacobian spectra (§5.7)


@dataclass
class JacobianSpectra(Result):
    """Eigenvalues of the step Jacobian J_t = diag(1[W_rec h_t + W_in x_{t+1} > 0]) W_rec along the orbit.

    unstable_counts : (n,) eigenvalues with |λ| > 1 at each state
    critical_pairs : (n,) eigenvalues with Möbius image m = (λ−1)/(λ+1), |Re m| < 0.1, Im m > 0.05
        (complex pairs near the unit circle, counted once per pair; docs/method.md §5.18)
    pc, labels : (n, 2), (n,) the states in the PC1–2 plane and their argmax outputs
    spectral_radius : (n,)
    """

    name = "jacobian_spectra"
    n_states: int
    seed: int
    unstable_counts: np.ndarray
    critical_pairs: np.ndarray
    spectral_radius: np.ndarray
    fraction_unstable: float
    fraction_critical: float
    pc: np.ndarray
    labels: np.ndarray
    eigenvalues_sample: np.ndarray

    def summary(self) -> str:
        return (f"Jacobians at {self.n_states} orbit states: {100 * self.fraction_unstable:.1f}% have an unstable "
                f"eigenvalue, {100 * self.fraction_critical:.1f}% a near-unit-circle complex pair; median "
                f"spectral radius {np.median(self.spectral_radius):.3f}")


def jacobian_spectra(run_or_model: Any, *, n_states: int = 2000, burn_in: int = 100, pca_steps: int = 30_000,
                     seed: int = 0) -> JacobianSpectra:
    """Batched eigenvalues of the state-dependent Jacobian at ``n_states`` consecutive noisy states.

    The Jacobian of h_{t+1} = relu(W_rec h_t + W_in x_{t+1}) with respect to h_t uses the
    pre-activation of that very step (the reference paired states with the noise of the previous
    step, docs/method.md §2.1). States come after ``burn_in`` steps from h_0 = 0.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    n_states : states at which the Jacobian is taken.
    burn_in : noisy steps before the first of them.
    pca_steps : length of the noisy run that gives the PCA basis of the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``JacobianSpectra``: unstable counts, critical pairs and spectral radius per state
    (n_states,), the fractions over states, and a sample of eigenvalues.
    """
    model, _ = resolve(run_or_model)
    basis, _ = reference_pca(model, steps=pca_steps, seed=seed)
    states, noise = simulate(model, burn_in + n_states + 1, seed=stream(seed, "jacobian_spectra", "orbit"), return_noise=True)
    h, x_next = states[0, burn_in:-1], noise[0, burn_in + 1:]
    with torch.no_grad():
        # single precision: 2x faster than double, and the counts only compare |λ| with 1
        eig = torch.linalg.eigvals(model.jacobian(h, x_next)).numpy().astype(np.complex128)
    modulus = np.abs(eig)
    unstable = (modulus > 1).sum(1)
    critical = critical_pairs(eig, im_floor=0.05)
    sample = eig[:: max(1, n_states // 50)].ravel()
    return JacobianSpectra(n_states, seed, unstable, critical, modulus.max(1), float((unstable > 0).mean()),
                           float((critical > 0).mean()), basis.project(h.numpy())[:, :2],
                           argmax_labels(model, h), np.stack([sample.real, sample.imag], axis=1))
