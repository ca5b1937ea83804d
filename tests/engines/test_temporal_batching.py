"""Temporal batching engine (PRES): the closed-form discontinuity rate against a seeded Monte Carlo,
the Zipf classes, the Zipf exponent fit to published statistics, the batch-time, speed-up and
event-cost formulas exactly.

The closed form assumes i.i.d. events drawn from the degree law (module docstring of
dse.engines.temporal_batching); the Monte Carlo draws exactly such events, so they must agree to
within the Monte Carlo's sampling error plus the rank-binning error of the classes (stated per test).
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.temporal_batching import (
    EXACT_DEGREES,
    DegreeClasses,
    batch_speedup,
    discontinuity_rate,
    fit_zipf_exponent,
    fixed_cost_for_speedup,
    largest_batch_under,
    side_classes,
    temporal_batch_time,
    tgn_event_cost,
    top_node_share,
    zipf_classes,
    zipf_mean_over_min,
)


def _zipf_shares(nodes: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, nodes + 1, dtype=float) ** -exponent
    return weights / weights.sum()


def _first_seen_earlier(endpoints: np.ndarray, node_count: int) -> np.ndarray:
    """For each position of each row, whether that node already appeared earlier in the row."""
    rows, width = endpoints.shape
    keys = (np.arange(rows)[:, None] * node_count + endpoints).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    positions = np.tile(np.arange(width), rows)
    return (first[inverse] % width < positions).reshape(rows, width)


def _monte_carlo_bipartite(
    users: np.ndarray, items: np.ndarray, batch: int, batches: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    src = rng.choice(users.size, size=(batches, batch), p=users)
    dst = rng.choice(items.size, size=(batches, batch), p=items)
    touched = _first_seen_earlier(src, users.size) | _first_seen_earlier(dst, items.size)
    per_batch = touched.mean(axis=1)
    return float(per_batch.mean()), float(per_batch.std(ddof=1) / np.sqrt(batches))


def _monte_carlo_one_set(nodes: np.ndarray, batch: int, batches: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ends = rng.choice(nodes.size, size=(batches, 2 * batch), p=nodes)
    # Event j (endpoints at positions 2j, 2j+1) counts when either node first appeared in an earlier event.
    first_position = np.argmax(ends[:, :, None] == ends[:, None, :], axis=2)
    event = np.repeat(np.arange(batch), 2)[None, :]
    touched_earlier = first_position // 2 < event
    per_batch = touched_earlier.reshape(batches, batch, 2).any(axis=2).mean(axis=1)
    return float(per_batch.mean()), float(per_batch.std(ddof=1) / np.sqrt(batches))


@pytest.mark.parametrize("batch", [10, 100, 400])
def test_closed_form_matches_monte_carlo_bipartite(batch):
    """Zipf users (2,000 nodes, s = 0.75) -> Zipf items (120 nodes, s = 0.75), seed 7, 200k events per batch
    size. Tolerance: 4 Monte Carlo standard errors + 0.005 for the rank bins of the closed form."""
    users, items = _zipf_shares(2000, 0.75), _zipf_shares(120, 0.75)
    expected = discontinuity_rate(
        batch_events=batch,
        source=zipf_classes(exponent=0.75, nodes=2000),
        destination=zipf_classes(exponent=0.75, nodes=120),
    )
    mean, stderr = _monte_carlo_bipartite(users, items, batch, batches=200_000 // batch, seed=7)
    assert abs(float(expected) - mean) <= 4 * stderr + 0.005, (float(expected), mean, stderr)


@pytest.mark.parametrize("batch", [20, 200])
def test_closed_form_matches_monte_carlo_one_node_set(batch):
    """Both endpoints from one Zipf set (600 nodes, s = 0.9), seed 11, 100k events per batch size.
    Tolerance: 4 Monte Carlo standard errors + 0.005 (rank bins; self-pairs are ignored by the closed form)."""
    nodes = _zipf_shares(600, 0.9)
    expected = discontinuity_rate(batch_events=batch, source=zipf_classes(exponent=0.9, nodes=600), destination=None)
    mean, stderr = _monte_carlo_one_set(nodes, batch, batches=100_000 // batch, seed=11)
    assert abs(float(expected) - mean) <= 4 * stderr + 0.005, (float(expected), mean, stderr)


def test_two_event_batch_exactly():
    """b = 2, uniform users (n_u) and items (n_v): rate = 1 - (1 + (1 - 1/n_u)(1 - 1/n_v)) / 2. Exact."""
    users = DegreeClasses(degrees=np.array([1.0]), node_counts=np.array([50.0]))
    items = DegreeClasses(degrees=np.array([1.0]), node_counts=np.array([8.0]))
    expected = 1 - (1 + (1 - 1 / 50) * (1 - 1 / 8)) / 2
    assert discontinuity_rate(batch_events=2, source=users, destination=items) == pytest.approx(expected, rel=1e-12)
    assert discontinuity_rate(batch_events=1, source=users, destination=items) == pytest.approx(0.0, abs=1e-15)


def test_rate_rises_with_the_batch_and_broadcasts():
    """Monotone in the batch; one call for an array of batch sizes (shape kept)."""
    dataset = default_catalog().get("graph_datasets", "wikipedia")
    batches = np.array([[1, 10], [100, 1000]], dtype=float)
    rate = discontinuity_rate(
        batch_events=batches,
        source=side_classes(dataset.source_side),
        destination=side_classes(dataset.destination_side),
    )
    assert rate.shape == (2, 2)
    assert np.all(np.diff(rate.ravel()) > 0) and rate.min() >= 0 and rate.max() < 1


def test_zipf_classes_hold_every_node_and_the_right_top_share():
    """Node counts sum to n exactly; the top node is exact: share = 1 / sum_r r^-s (binning is above rank 32).
    Tolerance on the top share: 0.5% (the bins' midpoint sums)."""
    classes = zipf_classes(exponent=0.75, nodes=8227)
    assert classes.node_counts.sum() == 8227
    assert np.all(classes.node_counts[:EXACT_DEGREES] == 1)
    assert top_node_share(classes) == pytest.approx(_zipf_shares(8227, 0.75)[0], rel=0.005)
    assert float(np.sum(classes.node_counts * classes.endpoint_probabilities)) == pytest.approx(1.0, rel=1e-12)


def test_batch_time_formula_exactly():
    """t_batch = t_fixed + t_event max(b, P); throughput b / t_batch; epoch ceil(E / b) t_batch. Exact."""
    cost = temporal_batch_time(
        batch_events=np.array([10.0, 200.0]),
        events=1000,
        fixed_cost_per_batch_s=5e-3,
        event_time_s=2e-6,
        parallel_events=20,
    )
    assert cost.batch_s.tolist() == [5e-3 + 2e-6 * 20, 5e-3 + 2e-6 * 200]
    assert cost.events_per_s.tolist() == [10 / (5e-3 + 4e-5), 200 / (5e-3 + 4e-4)]
    assert cost.epoch_s.tolist() == [100 * (5e-3 + 4e-5), 5 * (5e-3 + 4e-4)]
    assert cost.fill_fraction.tolist() == [0.5, 1.0]


def test_tgn_event_cost_exactly():
    """M = 4, D = 3, T = 2, F = 1, n = 2, fp32, by hand from the docstring's formulas (x3 for training)."""
    m = 2 * 4 + 2 + 1
    memory = 2 * 6 * (m * 4 + 16)
    per_node = 2 * (4 + 2) * 3 + 4 * 2 * (4 + 1 + 2) * 3 + 4 * 2 * 3 + 2 * (3 + 4) * 3 + 2 * 9
    predictor = 2 * (2 * 2 * 3 * 3 + 2 * 3)
    elements = 3 * 2 * (4 + 1) + 4 * 4 + 3 * 3
    cost = tgn_event_cost(
        memory_dim=4, embedding_dim=3, time_dim=2, edge_feature_dim=1, neighbors=2, bytes_per_element=4
    )
    assert cost.flop == 3 * (memory + 3 * per_node + predictor)
    assert cost.elements == elements and cost.bytes_moved == 3 * elements * 4


def test_mean_over_min_matches_its_closed_forms():
    """(1/N) sum_r (N/r)^s is 1 at s = 0 and the harmonic number H_N at s = 1; broadcasts. Exact to 1e-12."""
    ratio = zipf_mean_over_min(exponent=np.array([[0.0], [1.0]]), nodes=50)
    assert ratio.shape == (2, 1)
    assert ratio[0, 0] == pytest.approx(1.0, rel=1e-12)
    assert ratio[1, 0] == pytest.approx(float(np.sum(1.0 / np.arange(1, 51))), rel=1e-12)


def test_fit_recovers_a_known_exponent_and_refuses_impossible_ratios():
    """Round trip: a side built from s = 0.6 / 1.1 (least node 3 events) fits back to s to 1e-9.
    A mean below the threshold cannot be a Zipf side: NaN, not a number out of the bracket."""
    nodes, least = 2000, 3.0
    truth = np.array([0.6, 1.1])
    events = np.asarray(zipf_mean_over_min(exponent=truth, nodes=nodes)) * nodes * least
    fitted = fit_zipf_exponent(nodes=nodes, events=events, min_events_per_node=least)
    np.testing.assert_allclose(fitted, truth, atol=1e-9)
    assert np.isnan(fit_zipf_exponent(nodes=nodes, events=nodes * least * 0.5, min_events_per_node=least))


def test_wikipedia_user_exponent_is_the_fit_to_jodies_published_statistics():
    """JODIE (Kumar, Zhang & Leskovec, KDD 2019) keeps editors with at least 5 edits each (the selection
    rule). The preset's users and interactions are JODIE's Table 1 (8,227 and 157,474: records in
    kinds/temporal_batching/published.py); its user exponent is the Zipf exponent whose least node holds
    5 of the 19.14 mean, rounded to 3 decimals (tolerance 5e-4); the items stay assumed at 0.75."""
    dataset = default_catalog().get("graph_datasets", "wikipedia")
    users = dataset.source_side
    fitted = float(fit_zipf_exponent(nodes=users.nodes, events=dataset.events, min_events_per_node=5))
    assert users.exponent == pytest.approx(fitted, abs=5e-4)
    source_note = dataset.field_sources["source_side"]
    assert "FITTED" in source_note and f"s = {users.exponent:g} solves" in source_note
    assert dataset.destination_side is not None and dataset.destination_side.exponent == 0.75
    assert "ASSUMED" in dataset.field_sources["destination_side"]


def test_every_other_side_says_it_is_assumed():
    """No degree statistic is published for these sides (see each preset's field_sources): 0.75, marked ASSUMED."""
    catalog = default_catalog()
    for name in ("reddit", "mooc", "lastfm", "gdelt"):
        dataset = catalog.get("graph_datasets", name)
        for key, side in (("source_side", dataset.source_side), ("destination_side", dataset.destination_side)):
            if side is not None:
                assert side.exponent == 0.75 and "ASSUMED" in dataset.field_sources[key], (name, key)


def test_speedup_and_the_fixed_cost_that_gives_it_invert_each_other():
    """batch_speedup at fixed_cost_for_speedup(S) is S (1e-12), from below and from above the fill point P;
    no fixed cost gives a speed-up of k or more: NaN."""
    args = {"batch_events": np.array([20.0, 200.0]), "factor": 4.0, "event_time_s": 2e-6, "parallel_events": 50.0}
    fixed = fixed_cost_for_speedup(speedup=2.5, **args)
    np.testing.assert_allclose(batch_speedup(fixed_cost_per_batch_s=fixed, **args), 2.5, rtol=1e-12)
    assert np.isnan(fixed_cost_for_speedup(speedup=4.0, **args)).all()


def test_largest_batch_under_a_threshold_is_bracketed_and_broadcasts():
    """rate(b*) <= threshold < rate(b* + 1) for each threshold in one call; a threshold the whole epoch
    stays under gives the epoch (capped at `events`)."""
    users = zipf_classes(exponent=0.75, nodes=2000)
    items = zipf_classes(exponent=0.75, nodes=120)
    thresholds = np.array([0.1, 0.3, 0.6])
    best = largest_batch_under(threshold=thresholds, events=50_000, source=users, destination=items)
    assert best.shape == (3,)
    assert np.all(discontinuity_rate(batch_events=best, source=users, destination=items) <= thresholds)
    assert np.all(discontinuity_rate(batch_events=best + 1, source=users, destination=items) > thresholds)
    assert float(largest_batch_under(threshold=0.99, events=30, source=users, destination=items)) == 30
