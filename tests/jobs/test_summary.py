"""Shard summaries merge in any order and grouping to exactly the one-shot summary."""

from __future__ import annotations

import itertools
import random
from functools import reduce

import pytest

from dse.catalog import default_catalog
from dse.services.jobs.grid import evaluate_shard, points_of, shards
from dse.services.jobs.service import JobRequest, build_spec, merge_for
from dse.services.jobs.summary import empty_summary, pareto_front
from tests.jobs.conftest import inference_job


@pytest.fixture(scope="module")
def spec():
    _, _, spec = build_spec(JobRequest.model_validate(inference_job()), default_catalog())
    return spec


def _shard(spec, start, stop):
    return evaluate_shard(spec["document"], spec["axes"], start, stop, spec["settings"])


def test_merging_shards_in_any_order_equals_the_one_shot_summary(spec):
    n = points_of(spec["axes"])
    whole = _shard(spec, 0, n)
    assert whole["points"] == n == 192
    assert whole["refused"] == 0 and whole["infeasible"] > 0  # some batch/TP combinations do not fit
    assert whole["top"] and whole["pareto"] and whole["slices"]["0,1"]
    parts = [_shard(spec, a, b) for a, b in shards(n, 29)]  # uneven shards on purpose
    empty = empty_summary([len(a["values"]) for a in spec["axes"]])
    rng = random.Random(7)
    for _ in range(5):
        order = parts[:]
        rng.shuffle(order)
        assert reduce(lambda a, b: merge_for(spec, a, b), order, empty) == whole
    # A different grouping: merge pairs first, then the pairs (associativity), from the right.
    pairs = [reduce(lambda a, b: merge_for(spec, a, b), parts[i : i + 2]) for i in range(0, len(parts), 2)]
    assert reduce(lambda a, b: merge_for(spec, b, a), reversed(pairs)) == whole


def test_merge_is_commutative_and_associative_on_triples(spec):
    n = points_of(spec["axes"])
    a, b, c = (_shard(spec, x, y) for x, y in shards(n, 64))
    m = lambda x, y: merge_for(spec, x, y)  # noqa: E731
    assert m(a, b) == m(b, a)
    assert m(m(a, b), c) == m(a, m(b, c))
    empty = empty_summary([len(x["values"]) for x in spec["axes"]])
    assert m(a, empty) == a == m(empty, a)


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    points = [[1, 5, 0], [2, 4, 1], [2, 4, 2], [3, 4, 3], [2, 6, 4], [4, 1, 5], [5, 1, 6]]
    assert pareto_front(points, 1, 1) == [[1, 5, 0], [2, 4, 1], [2, 4, 2], [4, 1, 5]]
    for perm in itertools.islice(itertools.permutations(points), 50):
        assert pareto_front(list(perm), 1, 1) == pareto_front(points, 1, 1)


def test_top_k_is_the_best_of_the_grid(spec):
    n = points_of(spec["axes"])
    whole = _shard(spec, 0, n)
    values = [row[0] for row in whole["top"]]
    assert values == sorted(values) and len(values) == 5
    # Axis minima agree with the top row.
    assert min(v for v in whole["axis_best"][0] if v is not None) == values[0]


def test_a_cell_without_a_best_says_why(spec):
    """Every cell of a slice or an axis with no best (blank on the heatmap) has its points counted by why:
    here the batch/TP cells where no point fits (refused, infeasible, undefined, reason bits)."""
    n = points_of(spec["axes"])
    whole = _shard(spec, 0, n)
    shape = [len(a["values"]) for a in spec["axes"]]
    for key, best in whole["slices"].items():
        i, j = (int(x) for x in key.split(","))
        per_cell = n // (shape[i] * shape[j])
        why = whole["slice_why"][key]
        assert {int(c) for c in why} == {c for c, v in enumerate(best) if v is None}
        assert all(sum(w[:3]) == per_cell and w[3] == 0 for w in why.values())  # inference has no reason bits
    assert whole["slice_why"]["0,2"] and all(w[1] > 0 for w in whole["slice_why"]["0,2"].values())
    for a, best in enumerate(whole["axis_best"]):
        assert {int(c) for c in whole["axis_why"][a]} == {c for c, v in enumerate(best) if v is None}


def test_an_empty_cell_carries_the_reason_bits_of_its_plans():
    """A training job: global batch 1537 splits over no micro-batches, so its cells have no best and carry
    the reasons (the dashboard writes them in words); merging the shards gives the same."""
    from dse.engines.training import describe_reasons
    from dse.scenarios.registry import KINDS

    request = {
        "document": KINDS["training"].examples()[0],
        "axes": [
            {"path": "global_batch_size", "values": [1536, 1537, 3072]},
            {"path": "micro_batch_size", "values": [1, 2]},
        ],
        "objective": {"metric": "iteration_time_s", "goal": "min", "top_k": 3},
        "feasible": "fits",
    }
    _, _, spec = build_spec(JobRequest.model_validate(request), default_catalog())
    whole = _shard(spec, 0, 6)
    assert whole["slices"]["0,1"][2:4] == [None, None]
    why = whole["slice_why"]["0,1"]
    assert set(why) == {"2", "3"} and all(w[:3] == [0, 1, 0] for w in why.values())
    assert all("BATCH" in {r.name for r in describe_reasons(w[3])} for w in why.values())
    assert whole["axis_why"] == [{"1": [0, 2, 0, why["2"][3]]}, {}]
    merged = reduce(lambda a, b: merge_for(spec, a, b), [_shard(spec, k, k + 1) for k in range(6)])
    assert merged == whole
