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
