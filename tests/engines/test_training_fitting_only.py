"""The plan search's shortcuts in the training engine give the numbers of the plain evaluation, exactly.

`evaluate_plans(fitting_only=True)` (memory first, the rest only where a plan fits), `priced_only` (a mask),
`Selection` (the valid plans gathered by one nonzero), compute times priced once per distinct layout row, and
the search's per-order evaluation of its listed plans: each against the plain path, bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.plan_search import SearchSpace, search_plans
from dse.engines.plan_search.space import enumerate_layouts, grid_plans, inner_axes
from dse.engines.training import ClusterArrays, ModelArrays, PlanEvaluation, evaluate_plans
from dse.engines.training import evaluate as engine
from dse.engines.training.inputs import Selection, select_inputs
from tests.engines.test_plan_search import a100_cluster

CATALOG = default_catalog()
MODEL = ModelArrays.from_llm(CATALOG.get("llms", "megatron-gpt-1.7b"))
BATCH, SEQUENCE = 64, 2048


def cluster(nodes: int, ssd: str | None = None) -> ClusterArrays:
    return a100_cluster(nodes, **({"ssd": CATALOG.get("ssds", ssd), "ssds_per_node": 4} if ssd else {}))


def grid(c: ClusterArrays, space: SearchSpace) -> tuple[ClusterArrays, object]:
    """A plan-search grid over every layout of the space (one engine call), as the search builds it."""
    layouts = enumerate_layouts(
        space=space, nodes=int(c.nodes), gpus_per_node=8, sequence_parallel=space.sequence_parallel, num_layers=24
    )
    has_ssd = float(c.ssd_write_bandwidth_per_gpu_bytes_per_s) > 0
    inner = inner_axes(space=space, global_batch_size=BATCH, num_layers=24, has_ssd=has_ssd)
    plan = grid_plans(layouts=layouts, inner=inner, global_batch_size=BATCH, sequence_length=SEQUENCE, overlap=True)
    nodes = layouts.nodes.reshape(-1, *([1] * len(inner.shape)))
    return dataclasses.replace(c, nodes=nodes), plan


def assert_same_where(
    shortcut: PlanEvaluation, plain: PlanEvaluation, kept: np.ndarray, shape: tuple[int, ...]
) -> None:
    """Every metric equal bit for bit where `kept`, NaN (False) elsewhere."""
    for f in dataclasses.fields(PlanEvaluation):
        if f.name in ("reasons", "valid", "fits"):
            continue
        got = np.broadcast_to(getattr(shortcut, f.name), shape)
        want = np.broadcast_to(getattr(plain, f.name), shape)
        np.testing.assert_array_equal(got[kept], want[kept], err_msg=f.name)
        if got.dtype == np.bool_:
            assert not got[~kept].any(), f.name
        else:
            assert np.isnan(got[~kept]).all(), f.name


SPACE = SearchSpace(max_virtual_stages=4, max_micro_batch_size=8)


@pytest.mark.parametrize("dense_share", [0.0, 2.0])  # the memory pass on the broadcast inputs / on the valid plans
@pytest.mark.parametrize("ssd", [None, "samsung-pm1733"])  # with drives the memory pass needs the layer times
def test_fitting_only_prices_exactly_the_plans_that_fit(
    monkeypatch: pytest.MonkeyPatch, dense_share: float, ssd: str | None
) -> None:
    monkeypatch.setattr(engine, "DENSE_VALID_SHARE", dense_share)
    c, plan = grid(cluster(4, ssd), SPACE)
    plain = evaluate_plans(model=MODEL, cluster=c, plan=plan)
    quick = evaluate_plans(model=MODEL, cluster=c, plan=plan, fitting_only=True)
    shape = plain.reasons.shape
    assert 0 < plain.fits.sum() < plain.valid.sum() < plain.valid.size  # some invalid, some too large, some fit
    np.testing.assert_array_equal(quick.reasons, plain.reasons)
    np.testing.assert_array_equal(quick.valid, plain.valid)
    np.testing.assert_array_equal(quick.fits, plain.fits)
    assert_same_where(quick, plain, plain.fits, shape)


def test_priced_only_prices_the_valid_plans_of_its_mask() -> None:
    c, plan = grid(cluster(2), SPACE)
    plain = evaluate_plans(model=MODEL, cluster=c, plan=plan)
    mask = np.random.default_rng(0).random(plain.reasons.shape) < 0.3
    masked = evaluate_plans(model=MODEL, cluster=c, plan=plan, priced_only=mask)
    np.testing.assert_array_equal(masked.fits, plain.fits)
    np.testing.assert_array_equal(masked.reasons, plain.reasons)
    assert_same_where(masked, plain, mask & plain.valid, plain.reasons.shape)


def test_selection_gathers_what_a_boolean_mask_picks() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((5, 4, 3)) < 0.4
    values = [
        rng.random((5, 1, 1)),
        rng.random((4, 1)),
        rng.random((5, 4, 3)),
        np.broadcast_to(rng.random((1, 4, 1)), (5, 4, 3)),  # a broadcast view (zero strides)
        rng.random((3,)),
        np.float64(2.5),
    ]
    selection = Selection(mask)
    assert selection.count == int(mask.sum())
    for value in values:
        np.testing.assert_array_equal(selection.take(value), np.broadcast_to(value, mask.shape)[mask])
    one = Selection(np.array(True))
    np.testing.assert_array_equal(one.take(np.float64(3.0)), np.array([3.0]))
    assert Selection(np.array(False)).take(np.float64(3.0)).size == 0


def test_select_inputs_matches_boolean_indexing() -> None:
    c, plan = grid(cluster(2), SPACE)
    valid = evaluate_plans(model=MODEL, cluster=c, plan=plan).valid
    picked = select_inputs(plan, valid)
    for f in dataclasses.fields(plan):
        value = getattr(plan, f.name)
        want = value if np.ndim(value) == 0 else np.broadcast_to(value, valid.shape)[valid]
        np.testing.assert_array_equal(getattr(picked, f.name), want, err_msg=f.name)


def test_compute_times_priced_per_distinct_layout_are_the_same() -> None:
    c, plan = grid(cluster(8), SPACE)
    x = engine._terms(MODEL, c, plan)
    assert np.shape(x.t)[0] >= 32  # enough layouts for the distinct-rows path
    distinct = engine._distinct_rows_compute_times(x, MODEL, c)
    whole = engine._compute_times(x, MODEL, c)
    for f in dataclasses.fields(whole):
        np.testing.assert_array_equal(
            np.broadcast_to(getattr(distinct, f.name), np.shape(getattr(whole, f.name))),
            getattr(whole, f.name),
            err_msg=f.name,
        )


@pytest.mark.parametrize("orders_on_pool_only", [True, False])
def test_listed_plans_are_evaluated_on_their_own_node_order(orders_on_pool_only: bool) -> None:
    """With a measured matrix (the given order puts the slow links between neighbours), each listed plan's
    numbers are those of a direct evaluation on the order it is listed with, whichever orders the list uses."""
    c = cluster(4)
    pod = np.arange(4) % 2
    matrix = np.where(pod[:, None] == pod[None, :], float(c.inter_node_bandwidth_per_gpu_bytes_per_s), 1e9)
    c = dataclasses.replace(c, node_pair_bandwidth_bytes_per_s=matrix)
    result = search_plans(
        model=MODEL,
        cluster=c,
        global_batch_size=BATCH,
        sequence_length=SEQUENCE,
        space=dataclasses.replace(SPACE, node_counts=(4,)),
        orders_on_pool_only=orders_on_pool_only,
        mapping_steps=0,
    )
    assert len(result.node_orders) > 1
    if not orders_on_pool_only:  # plans on several orders in one list (the grid judged on each)
        assert len(set(result.pareto.node_order_index.tolist())) > 1
    for ranked in (result.top, result.pareto):
        for i in range(len(ranked)):
            order = result.node_orders[int(ranked.node_order_index[i])]
            ordered = dataclasses.replace(
                c, nodes=float(ranked.nodes[i]), node_pair_bandwidth_bytes_per_s=matrix[np.ix_(order, order)]
            )
            plan = type(ranked.plans)(
                **{
                    f.name: np.broadcast_to(getattr(ranked.plans, f.name), ranked.nodes.shape)[[i]]
                    for f in dataclasses.fields(ranked.plans)
                }
            )
            direct = evaluate_plans(model=MODEL, cluster=ordered, plan=plan)
            assert float(direct.iteration_time_s[0]) == float(ranked.evaluation.iteration_time_s[i])
