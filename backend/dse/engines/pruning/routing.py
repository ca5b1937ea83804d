"""Routing: entropic optimal transport (Sinkhorn, log domain) of a prompt mix onto K architecture
codes, and the budget check on the mean resource ratio."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.engines.pruning.layers import FloatArray
from dse.specs.common import Num


@dataclass(frozen=True)
class TransportPlan:
    """Sinkhorn result: plan[..., i, k] = share of all prompts from category i sent to code k."""

    plan: FloatArray
    iterations: int
    #: Largest deviation of the row sums from the category shares before the final rounding.
    marginal_error: float
    #: Problems that reached max_iterations before the tolerance (their plans are still rounded).
    unconverged: int = 0


def _logsumexp(x: FloatArray, axis: int) -> FloatArray:
    # ndarray methods, not the np.* wrappers: the same reductions, without the dispatch that dominates
    # on the small (categories x codes) arrays of each Sinkhorn iteration
    peak = x.max(axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out: FloatArray = np.log(np.exp(x - peak).sum(axis=axis)) + peak.squeeze(axis=axis)
    return out


def _round_to_marginals(plan: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """The nearest-by-construction plan with exactly the marginals a and b (Altschuler, Weed and
    Rigollet, NeurIPS 2017, Algorithm 2): scale rows then columns down to their targets, and
    spread what is missing as a rank-one correction. Moves at most the marginal error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        row_scale = np.where(plan.sum(axis=-1) > 0, np.minimum(a / plan.sum(axis=-1), 1.0), 0.0)
        x = plan * row_scale[..., :, None]
        col_scale = np.where(x.sum(axis=-2) > 0, np.minimum(b / x.sum(axis=-2), 1.0), 0.0)
        y = x * col_scale[..., None, :]
    missing_rows = a - y.sum(axis=-1)
    missing_cols = b - y.sum(axis=-2)
    total = np.sum(missing_cols, axis=-1)[..., None, None]
    correction = np.where(
        total > 0, missing_rows[..., :, None] * missing_cols[..., None, :] / np.where(total > 0, total, 1.0), 0.0
    )
    out: FloatArray = y + correction
    return out


def sinkhorn(
    *,
    cost: Num,
    row_marginal: Num,
    col_marginal: Num,
    epsilon: Num,
    max_iterations: int = 2000,
    tolerance: float = 1e-9,
) -> TransportPlan:
    """Entropic OT: argmin_P <P, C> - epsilon * H(P) with P 1 = a and P^T 1 = b (log domain).

    cost is (..., C, K); row_marginal (..., C), col_marginal (..., K) each sum to 1, epsilon
    (...); every leading index is its own problem, all solved together, each iterating until
    its row marginals hold to `tolerance` (or max_iterations); converged problems drop out of
    the batch. Zero marginals are allowed (their rows / columns stay empty). The plan is then
    rounded onto the exact marginals; `marginal_error` is the largest error before rounding.

    Small problems (an evaluation's, not a sweep's) are kept, most recently used last: the transport
    depends on the prompt mix, the codes and epsilon only, so an answer whose batch, budget, device or
    steps changed routes again for free. A kept plan is read-only.
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in (cost, row_marginal, col_marginal, epsilon)]
    if sum(x.size for x in arrays) > KEPT_PLAN_MAX_ELEMENTS:
        return _sinkhorn(*arrays, max_iterations=max_iterations, tolerance=tolerance)
    keys = tuple((x.shape, x.tobytes()) for x in arrays)
    return _kept_sinkhorn(*keys, max_iterations=max_iterations, tolerance=tolerance)


#: Largest problem (elements of cost and marginals together) whose plan `sinkhorn` keeps, and how many it keeps.
KEPT_PLAN_MAX_ELEMENTS = 4096
KEPT_PLANS = 64

_Key = tuple[tuple[int, ...], bytes]


@functools.lru_cache(maxsize=KEPT_PLANS)
def _kept_sinkhorn(
    cost: _Key, row: _Key, col: _Key, eps: _Key, *, max_iterations: int, tolerance: float
) -> TransportPlan:
    arrays = [np.frombuffer(data, dtype=np.float64).reshape(shape) for shape, data in (cost, row, col, eps)]
    plan = _sinkhorn(*arrays, max_iterations=max_iterations, tolerance=tolerance)
    plan.plan.setflags(write=False)
    return plan


#: Largest spread of -cost/epsilon over one problem that the factorised single-problem solve takes on
#: (e**-600 ~ 1e-261 stays a normal double, as do the scalings of the problems an evaluation routes); wider goes the
#: general way.
FACTORISED_MAX_SPREAD = 600.0


def _sinkhorn(
    c0: FloatArray, a0: FloatArray, b0: FloatArray, e0: FloatArray, *, max_iterations: int, tolerance: float
) -> TransportPlan:
    lead = np.broadcast_shapes(c0.shape[:-2], a0.shape[:-1], b0.shape[:-1], e0.shape)
    n_rows, n_cols = c0.shape[-2], c0.shape[-1]
    c = np.broadcast_to(c0, (*lead, n_rows, n_cols)).reshape(-1, n_rows, n_cols)
    a = np.broadcast_to(a0, (*lead, n_rows)).reshape(-1, n_rows)
    b = np.broadcast_to(b0, (*lead, n_cols)).reshape(-1, n_cols)
    eps = np.broadcast_to(e0, lead).reshape(-1)
    if len(eps) == 1:
        single = _single_sinkhorn(c[0], a[0], b[0], float(eps[0]), max_iterations=max_iterations, tolerance=tolerance)
        if single is not None:
            plan1, iterations1, error1 = single
            return TransportPlan(
                plan=_round_to_marginals(plan1, a[0], b[0]).reshape(*lead, n_rows, n_cols),
                iterations=iterations1,
                marginal_error=error1,
                unconverged=int(not error1 < tolerance),
            )
    with np.errstate(divide="ignore"):
        log_a, log_b = np.log(a), np.log(b)
    f = np.zeros_like(a)
    g = np.zeros_like(b)
    active = np.arange(len(eps))
    error = np.full(len(eps), np.inf)
    iterations = 0
    with np.errstate(invalid="ignore"):
        while active.size and iterations < max_iterations:  # iterations of the batched solve
            iterations += 1
            every = active.size == len(eps)  # no problem converged yet: the whole arrays, not copies
            ca, ea = (c, eps[:, None]) if every else (c[active], eps[active][:, None])
            log_aa, log_ba, aa = (log_a, log_b, a) if every else (log_a[active], log_b[active], a[active])
            fa = ea * (log_aa - _logsumexp(((g if every else g[active])[:, None, :] - ca) / ea[..., None], axis=-1))
            fa = np.where(np.isfinite(fa), fa, -np.inf)
            ga = ea * (log_ba - _logsumexp((fa[:, :, None] - ca) / ea[..., None], axis=-2))
            ga = np.where(np.isfinite(ga), ga, -np.inf)
            rows = np.exp((fa[:, :, None] + ga[:, None, :] - ca) / ea[..., None])
            error_a = np.abs(np.where(np.isfinite(rows), rows, 0.0).sum(axis=-1) - aa).max(axis=-1)
            if every:
                f, g, error = fa, ga, error_a
            else:
                f[active], g[active], error[active] = fa, ga, error_a
            active = active[error_a >= tolerance]
        plan = np.exp((f[:, :, None] + g[:, None, :] - c) / eps[:, None, None])
    plan = np.where(np.isfinite(plan), plan, 0.0)
    rounded = _round_to_marginals(plan, a, b).reshape(*lead, n_rows, n_cols)
    return TransportPlan(
        plan=rounded,
        iterations=iterations,
        marginal_error=float(np.max(error, initial=0.0)),
        unconverged=int(active.size),
    )


def _single_sinkhorn(
    c: FloatArray, a: FloatArray, b: FloatArray, eps: float, *, max_iterations: int, tolerance: float
) -> tuple[FloatArray, int, float] | None:
    """One problem with positive marginals (an evaluation's): the general solve's iterates (to round-off)
    for about a sixth of its numpy calls, or None where the general solve must take it.

    Scaled potentials F = f / eps, G = g / eps and M = -c / eps. Each log-sum-exp factorises,
    lse_k(G_k + M_ik) = log sum_k K_ik exp(G_k) + max_k M_ik with K = exp(M - row max) computed once,
    so the iteration runs on the scalings U = exp(F), V = exp(G) (Sinkhorn's own form): a matrix-vector
    product and a division per half step. The row sums that the stopping test needs fall out of the
    next row update, rows_i = a_i U_i / U'_i. With the spread of M capped, the scalings of the problems
    an evaluation routes stay far inside a double's range; a problem whose scalings leave it (a zero or
    an overflow) returns None.
    """
    finite = np.isfinite(c).all() and np.isfinite(a).all() and np.isfinite(b).all()
    if not (finite and a.min() > 0.0 and b.min() > 0.0 and 0.0 < eps < np.inf):
        return None
    m = -c / eps
    row_peak, col_peak = m.max(axis=1), m.max(axis=0)
    if float(row_peak.max() - m.min()) > FACTORISED_MAX_SPREAD:
        return None
    k_rows = np.exp(m - row_peak[:, None])  # for sums over codes
    k_cols = np.exp(m - col_peak[None, :])  # for sums over categories
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # a scaling out of range: None below
        scaled_a, scaled_b = a * np.exp(-row_peak), b * np.exp(-col_peak)
        next_u = scaled_a / k_rows.sum(axis=1)
        u, v = next_u, np.ones_like(b)
        error = np.inf
        iterations = 0
        while iterations < max_iterations:
            iterations += 1
            u = next_u
            v = scaled_b / u.dot(k_cols)
            next_u = scaled_a / k_rows.dot(v)
            error = _abs_peak(a * (u / next_u) - a)  # max_i |rows_i - a_i|, rows_i = a_i U_i / U'_i
            if error < tolerance or error != error:
                break
    scalings = np.concatenate([u, v])
    if not (np.isfinite(error) and np.isfinite(scalings).all() and scalings.min() > 0.0):
        return None
    plan: FloatArray = np.exp(np.log(u)[:, None] + np.log(v)[None, :] + m)
    return plan, iterations, error


_LIST_MAX_SIZE = 64


def _abs_peak(x: FloatArray) -> float:
    # A handful of floats: Python's max over the list beats numpy's reduction dispatch several times over.
    return float(max(map(abs, x.tolist()))) if x.size <= _LIST_MAX_SIZE else float(np.abs(x).max())


def routing_cost(*, code_ratio: Num, category_capacity: Num) -> FloatArray:
    """C[i, k] = (R_k - q_i)^2: squared mismatch between a code's resource ratio and the capacity
    a prompt category needs. Too little capacity costs quality, too much wastes compute; the
    squared form is submodular, so the exact plan is the monotone (sorted) coupling."""
    r = np.asarray(code_ratio, dtype=np.float64)
    q = np.asarray(category_capacity, dtype=np.float64)
    out: FloatArray = (r[..., None, :] - q[..., :, None]) ** 2
    return out


@dataclass(frozen=True)
class Routing:
    plan: TransportPlan
    #: Share of prompts each code serves (..., K).
    code_share: FloatArray
    #: Mean resource ratio over prompts, sum_k share_k * R_k.
    mean_ratio: FloatArray
    #: Mean capacity shortfall, sum_ik P_ik * max(0, q_i - R_k): prompts under-served.
    mean_shortfall: FloatArray
    budget_met: NDArray[np.bool_]


def route_prompts(
    *,
    category_share: Num,
    category_capacity: Num,
    code_ratio: Num,
    code_capacity: Num,
    budget_ratio: Num,
    epsilon: Num,
) -> Routing:
    """Assign a prompt mix to codes by entropic OT and check the compute budget (mean R <= budget)."""
    cost = routing_cost(code_ratio=code_ratio, category_capacity=category_capacity)
    plan = sinkhorn(cost=cost, row_marginal=category_share, col_marginal=code_capacity, epsilon=epsilon)
    r = np.asarray(code_ratio, dtype=np.float64)
    q = np.asarray(category_capacity, dtype=np.float64)
    share = plan.plan.sum(axis=-2)
    mean_ratio = np.sum(share * r, axis=-1)
    shortfall = np.sum(plan.plan * np.maximum(q[..., :, None] - r[..., None, :], 0.0), axis=(-2, -1))
    # Round-off of the Sinkhorn marginals must not flip a budget that holds exactly.
    met = mean_ratio <= np.asarray(budget_ratio, dtype=np.float64) + 1e-9
    return Routing(plan=plan, code_share=share, mean_ratio=mean_ratio, mean_shortfall=shortfall, budget_met=met)
