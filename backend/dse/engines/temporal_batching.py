"""Temporal batching of memory-based dynamic GNNs (TGN, JODIE, APAN; PRES, ICLR'24).

Throughput: a temporal batch of b events costs
    t_batch(b) = t_fixed + t_event * max(b, P)
t_fixed is the per-batch cost (launches, host work); t_event the roofline time of one event's
training work; P the events that fill the accelerator: resident threads / elements one event
touches (below P the kernels run part-empty, so the time does not shrink).
Throughput = b / t_batch; epoch = ceil(E / b) batches.

Temporal discontinuity: events are drawn i.i.d. from the degree distribution (a node's share of
event endpoints is its degree over the side's total; datasets give a Zipf rank law or a histogram).
Event j of a batch is "clean" when neither
endpoint was touched by events 1..j-1; with per-earlier-event avoidance factor r_uv for an event
on (u, v),
    P(clean_j) = sum_uv w_uv r_uv^(j-1),   w_uv = Pr[event on (u, v)]
    rate(b)    = 1 - (1/b) sum_uv w_uv (1 - r_uv^b) / (1 - r_uv)
bipartite (users -> items): r_uv = (1 - p_u)(1 - q_v); one node set: r_uv = (1 - p_u - p_v)^2.
Node classes (same degree) replace single nodes, so the sums run over classes.

Largest batch under a discontinuity threshold: the rate grows with the batch, so a vectorised
bisection over whole batches finds the largest b with rate(b) <= threshold (largest_batch_under).

Speed-up of a k-times larger batch: throughput(k b) / throughput(b); inverted, the per-batch
fixed cost at which it equals a given S (fixed_cost_for_speedup).

Zipf exponent fit: a published selection threshold (least events per kept node) and the mean
events per node pin s through mean / least = (1/N) sum_r (N/r)^s (fit_zipf_exponent).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.engines.device import Device
from dse.specs.common import Num
from dse.specs.workloads import DegreeSideSpec, GraphDatasetSpec

#: Most popular nodes kept as single-node classes; log-spaced rank bins after them.
EXACT_DEGREES = 32
#: Log-spaced rank bins after the EXACT_DEGREES top nodes.
LOG_BINS = 48
#: Batch sizes evaluated together in the discontinuity sum (bounds memory, not a loop per point).
_CHUNK = 512

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DegreeClasses:
    """Node classes of one side: each class has `node_counts` nodes of degree `degrees`."""

    degrees: FloatArray
    node_counts: FloatArray

    @property
    def endpoint_probabilities(self) -> FloatArray:
        """Probability that one endpoint draw of this side lands on a given node of each class."""
        result: FloatArray = self.degrees / float(np.sum(self.degrees * self.node_counts))
        return result

    @property
    def mean_degree(self) -> float:
        return float(np.sum(self.degrees * self.node_counts) / np.sum(self.node_counts))


def zipf_classes(*, exponent: float, nodes: int) -> DegreeClasses:
    """Nodes ranked by popularity, rank r holding a share ∝ r^-exponent of the side's endpoints.

    Ranks 1..EXACT_DEGREES are single-node classes; higher ranks are grouped into LOG_BINS
    log-spaced bins of whole ranks, each class's `degrees` being the mean of r^-exponent over its
    ranks (relative weights: only the shares matter to the discontinuity rate).
    """
    exact = np.arange(1, min(nodes, EXACT_DEGREES) + 1, dtype=np.float64)
    weights = exact**-exponent
    counts = np.ones_like(exact)
    if nodes > EXACT_DEGREES:
        edges = np.unique(np.round(np.geomspace(EXACT_DEGREES + 1, nodes + 1, LOG_BINS + 1)))
        lo, hi = edges[:-1], edges[1:]  # ranks lo .. hi-1
        bin_counts = hi - lo
        bin_sums = _power_integral(lo - 0.5, hi - 0.5, exponent)  # midpoint rule of sum over ranks
        weights = np.concatenate([weights, bin_sums / bin_counts])
        counts = np.concatenate([counts, bin_counts])
    return DegreeClasses(degrees=weights, node_counts=counts)


def _power_integral(lo: FloatArray, hi: FloatArray, exponent: float) -> FloatArray:
    """∫_lo^hi r^-exponent dr."""
    if abs(exponent - 1.0) < 1e-12:
        result: FloatArray = np.log(hi / lo)
        return result
    a = 1.0 - exponent
    result = (hi**a - lo**a) / a
    return result


#: Bracket of the Zipf exponent fit: s = 0 is a flat side; s = 4 puts >90% of a side on its top node.
ZIPF_FIT_MAX_EXPONENT = 4.0
#: Bisection halvings: 60 shrink the 4-wide bracket below float64 resolution.
_BISECTION_STEPS = 60


def zipf_mean_over_min(*, exponent: Num, nodes: int) -> Num:
    """Mean over least events per node of a Zipf rank law on `nodes` ranks (exact sum over ranks).

    degree(r) = E r^-s / H,  H = sum_{r=1..N} r^-s;  mean / degree(N) = (1/N) sum_r (N / r)^s.
    Increasing in s: 1 at s = 0 (a flat side), H_N at s = 1. Broadcasts `exponent`.
    """
    s = np.asarray(exponent, dtype=np.float64)
    log_ratio = np.log(nodes / np.arange(1, nodes + 1, dtype=np.float64))  # log(N / r)
    flat = s.ravel()
    result = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):  # bounds the (exponents x ranks) matrix, not a loop per point
        result[start : start + _CHUNK] = np.exp(flat[start : start + _CHUNK, None] * log_ratio).mean(axis=1)
    out: Num = result.reshape(s.shape)
    return out


def fit_zipf_exponent(*, nodes: int, events: Num, min_events_per_node: Num) -> Num:
    """The Zipf exponent s at which a side of `nodes` ranks holding `events` endpoints has its least
    node at `min_events_per_node`: solves zipf_mean_over_min(s, N) = (events / N) / min_events_per_node.

    The published statistic is a selection rule (e.g. JODIE keeps editors with at least 5 edits),
    so the least-active kept node sits at the threshold. Bisection over s in [0, ZIPF_FIT_MAX_EXPONENT],
    vectorised over the targets; a ratio below 1 (mean under the minimum) is impossible and gives NaN.
    """
    target = np.asarray(events, dtype=np.float64) / nodes / np.asarray(min_events_per_node, dtype=np.float64)
    lo = np.zeros_like(target)
    hi = np.full_like(target, ZIPF_FIT_MAX_EXPONENT)
    for _ in range(_BISECTION_STEPS):  # fixed halvings of the bracket, each one vectorised call
        mid = 0.5 * (lo + hi)
        below = np.asarray(zipf_mean_over_min(exponent=mid, nodes=nodes)) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    fitted = 0.5 * (lo + hi)
    top = np.asarray(zipf_mean_over_min(exponent=ZIPF_FIT_MAX_EXPONENT, nodes=nodes))
    result: Num = np.where((target >= 1.0) & (target <= top), fitted, np.nan)
    return result


@functools.lru_cache(maxsize=128)  # a pure function of a (hashable) side spec: one per catalog side and override
def side_classes(side: DegreeSideSpec, *, exponent: float | None = None) -> DegreeClasses:
    """The classes of a side spec; `exponent` overrides a Zipf side's exponent. Read-only (kept)."""
    if side.law == "histogram":
        classes = DegreeClasses(
            degrees=np.asarray(side.histogram_degrees, dtype=np.float64),
            node_counts=np.asarray(side.histogram_node_counts, dtype=np.float64),
        )
    else:
        classes = zipf_classes(exponent=side.exponent if exponent is None else exponent, nodes=side.nodes)
    classes.degrees.setflags(write=False)
    classes.node_counts.setflags(write=False)
    return classes


def dataset_classes(
    dataset: GraphDatasetSpec, *, exponent: float | None = None
) -> tuple[DegreeClasses, DegreeClasses | None]:
    """(source, destination) classes of a dataset; destination None for one node set.

    `exponent` overrides the exponent of every Zipf side (histogram sides keep their counts).
    """
    destination = dataset.destination_side if dataset.bipartite else None
    return sides_classes(dataset.source_side, destination, exponent=exponent)


def sides_classes(
    source: DegreeSideSpec, destination: DegreeSideSpec | None, *, exponent: float | None = None
) -> tuple[DegreeClasses, DegreeClasses | None]:
    """`dataset_classes` of a dataset's sides (destination None: one node set)."""

    def one(side: DegreeSideSpec) -> DegreeClasses:
        return side_classes(side, exponent=exponent if side.law == "zipf" else None)

    return one(source), None if destination is None else one(destination)


def top_node_share(classes: DegreeClasses) -> float:
    """Share of the side's endpoints held by its most popular node."""
    return float(np.max(classes.endpoint_probabilities))


def _pair_terms(source: DegreeClasses, destination: DegreeClasses | None) -> tuple[FloatArray, FloatArray]:
    """Weights w and avoidance factors r over class pairs (flattened)."""
    p = source.endpoint_probabilities
    mass_p = source.node_counts * p
    if destination is None:
        weights = np.outer(mass_p, mass_p)
        avoid = (1.0 - p[:, None] - p[None, :]) ** 2
    else:
        q = destination.endpoint_probabilities
        weights = np.outer(mass_p, destination.node_counts * q)
        avoid = np.outer(1.0 - p, 1.0 - q)
    return weights.ravel(), np.clip(avoid.ravel(), 0.0, 1.0)


@dataclass(frozen=True)
class _Pairs:
    """The class pairs of `discontinuity_rate`, prepared once for any number of batches."""

    log_avoid: FloatArray
    hit_weights: FloatArray
    never_hit: float
    total_hit: float


def _pairs(source: DegreeClasses, destination: DegreeClasses | None) -> _Pairs:
    weights, avoid = _pair_terms(source, destination)
    hit = avoid < 1.0
    hit_weights = weights[hit] / (1.0 - avoid[hit])
    return _Pairs(
        log_avoid=np.log(np.where(avoid[hit] > 0, avoid[hit], np.finfo(np.float64).tiny)),
        hit_weights=hit_weights,
        never_hit=float(weights[~hit].sum()),
        total_hit=float(hit_weights.sum()),
    )


def discontinuity_rate(*, batch_events: Num, source: DegreeClasses, destination: DegreeClasses | None) -> Num:
    """Expected share of a batch's events that touch a node an earlier event of the batch touched.

    `destination` None: one node set (both endpoints drawn from `source`). Broadcasts `batch_events`.
    """
    return _rate(batch_events, _pairs(source, destination))


def _rate(batch_events: Num, pairs: _Pairs) -> Num:
    """`discontinuity_rate` over prepared class pairs."""
    batch = np.asarray(batch_events, dtype=np.float64)
    flat = np.maximum(batch.ravel(), 1.0)
    # sum_{j<b} r^j = (1 - r^b) / (1 - r); pairs that cannot be hit (r = 1) contribute b each.
    clean = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):
        b = flat[start : start + _CHUNK]
        clean[start : start + _CHUNK] = (
            pairs.total_hit - np.exp(b[:, None] * pairs.log_avoid) @ pairs.hit_weights + pairs.never_hit * b
        )
    # Clipped: the subtraction above may leave a rounding residue of ~1e-13 at b = 1.
    result: Num = np.clip(1.0 - clean / flat, 0.0, 1.0).reshape(batch.shape)
    return result


def largest_batch_under(
    *, threshold: Num, events: Num, source: DegreeClasses, destination: DegreeClasses | None
) -> Num:
    """The largest temporal batch (events, whole) whose discontinuity rate stays at or under `threshold`,
    at most `events`. The rate grows with the batch, so a vectorised bisection over whole batches
    finds it (about log2(events) rate evaluations; broadcasts over the threshold and events)."""
    thr = np.asarray(threshold, dtype=np.float64)
    top = np.floor(np.asarray(events, dtype=np.float64))
    lo = np.ones(np.broadcast_shapes(thr.shape, top.shape))  # rate(1) = 0: always under
    hi = np.broadcast_to(top, lo.shape).copy()
    pairs = _pairs(source, destination)  # the same classes at every step
    hi_ok = np.asarray(_rate(hi, pairs)) <= thr
    lo = np.where(hi_ok, hi, lo)
    for _ in range(int(np.ceil(np.log2(max(float(np.max(top)), 2.0)))) + 1):  # over halvings, not points
        mid = np.floor((lo + hi) / 2.0)
        ok = np.asarray(_rate(mid, pairs)) <= thr
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        if np.all(hi - lo <= 1.0):
            break
    result: Num = lo
    return result


@dataclass(frozen=True)
class EventCost:
    """Training work of one event (forward + backward) of a TGN-style model."""

    flop: float
    bytes_moved: float
    #: Elements one event's forward pass reads or writes: one thread each fills the accelerator.
    elements: float
    memory_update_flop: float
    embedding_flop: float
    predictor_flop: float


def tgn_event_cost(
    *,
    memory_dim: float,
    embedding_dim: float,
    time_dim: float,
    edge_feature_dim: float,
    neighbors: float,
    bytes_per_element: float,
) -> EventCost:
    """FLOP and bytes of one event's training step (TGN: identity messages, GRU memory, 1-layer attention).

    Forward, per event (M memory, D embedding, T time, F edge, n neighbours; 2 FLOP per MAC):
      memory: 2 nodes x GRU on messages [s_u, s_v, phi(dt), e] of m = 2M+T+F: 2 * 6*(m*M + M^2)
      embedding: 3 nodes (source, destination, negative) x [q: 2(M+T)D, k and v: 4n(M+F+T)D,
                 scores and context: 4nD, merge: 2(D+M)D + 2D^2]
      predictor: 2 pairs (positive, negative) x (2*2D*D + 2D)
    Training = 3x forward. Bytes: each embedded node gathers n neighbours' memory and edge
    features, each updated node reads and writes its memory; 3x for the backward pass.
    """
    message = 2.0 * memory_dim + time_dim + edge_feature_dim
    memory_update = 2.0 * 6.0 * (message * memory_dim + memory_dim**2)
    per_node = (
        2.0 * (memory_dim + time_dim) * embedding_dim
        + 4.0 * neighbors * (memory_dim + edge_feature_dim + time_dim) * embedding_dim
        + 4.0 * neighbors * embedding_dim
        + 2.0 * (embedding_dim + memory_dim) * embedding_dim
        + 2.0 * embedding_dim**2
    )
    embedding = 3.0 * per_node
    predictor = 2.0 * (2.0 * 2.0 * embedding_dim * embedding_dim + 2.0 * embedding_dim)
    forward = memory_update + embedding + predictor
    elements = 3.0 * neighbors * (memory_dim + edge_feature_dim) + 2.0 * 2.0 * memory_dim + 3.0 * embedding_dim
    return EventCost(
        flop=3.0 * forward,
        bytes_moved=3.0 * elements * bytes_per_element,
        elements=elements,
        memory_update_flop=3.0 * memory_update,
        embedding_flop=3.0 * embedding,
        predictor_flop=3.0 * predictor,
    )


def event_time_s(cost: EventCost, device: Device) -> Num:
    """Roofline time of one event's training work on `device`.

    No launch is added per event: launches belong to the per-batch fixed cost.
    """
    return device.op_time_s(cost.flop, cost.bytes_moved, kernels=0.0).time_s


def parallel_events(*, resident_threads: Num, elements_per_event: float) -> Num:
    """Events that fill the accelerator: resident threads / elements one event touches (one thread each)."""
    result: Num = np.asarray(resident_threads, dtype=np.float64) / elements_per_event
    return result


@dataclass(frozen=True)
class TemporalBatchCost:
    """Time and rates of temporal batches; broadcast arrays."""

    batch_s: Num
    events_per_s: Num
    batches_per_epoch: Num
    epoch_s: Num
    fill_fraction: Num


def temporal_batch_time(
    *, batch_events: Num, events: Num, fixed_cost_per_batch_s: Num, event_time_s: Num, parallel_events: Num
) -> TemporalBatchCost:
    """t_batch = t_fixed + t_event * max(b, P); epoch = ceil(E / b) * t_batch."""
    b = np.asarray(batch_events, dtype=np.float64)
    batch_s = fixed_cost_per_batch_s + event_time_s * np.maximum(b, parallel_events)
    batches = np.ceil(events / b)
    return TemporalBatchCost(
        batch_s=batch_s,
        events_per_s=b / batch_s,
        batches_per_epoch=batches,
        epoch_s=batches * batch_s,
        fill_fraction=np.minimum(1.0, b / parallel_events),
    )


def _busy_s(batch_events: Num, event_time_s: Num, parallel_events: Num) -> Num:
    """The size-dependent part of a batch's time: t_event * max(b, P)."""
    result: Num = event_time_s * np.maximum(batch_events, parallel_events)
    return result


def batch_speedup(
    *, batch_events: Num, factor: Num, fixed_cost_per_batch_s: Num, event_time_s: Num, parallel_events: Num
) -> Num:
    """Throughput of a `factor` times larger batch over that of `batch_events`:
    (k b / t_batch(k b)) / (b / t_batch(b))."""
    small = np.asarray(batch_events, dtype=np.float64)
    large = small * factor
    small_rate = small / (fixed_cost_per_batch_s + _busy_s(small, event_time_s, parallel_events))
    large_rate = large / (fixed_cost_per_batch_s + _busy_s(large, event_time_s, parallel_events))
    result: Num = large_rate / small_rate
    return result


def fixed_cost_for_speedup(
    *, batch_events: Num, factor: Num, speedup: Num, event_time_s: Num, parallel_events: Num
) -> Num:
    """The per-batch fixed cost at which a `factor` (k) times larger batch runs `speedup` (S) times faster:
    S = k (t_f + t_v(b)) / (t_f + t_v(k b))  gives  t_f = (S t_v(k b) - k t_v(b)) / (k - S),
    t_v(b) = t_event * max(b, P). NaN where k <= S (no fixed cost reaches it)."""
    small = np.asarray(batch_events, dtype=np.float64)
    large = small * factor
    result: Num = np.where(
        factor > speedup,
        (
            speedup * _busy_s(large, event_time_s, parallel_events)
            - factor * _busy_s(small, event_time_s, parallel_events)
        )
        / (factor - speedup),
        np.nan,
    )
    return result
