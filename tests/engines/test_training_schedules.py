"""Pipeline schedules: GPipe's bubble, interleaving, and the timeline replay against the closed form.

Sources: Huang et al. 2019 (GPipe), bubble (K-1)/(M+K-1); Narayanan et al. 2021 (1F1B, interleaved:
bubble divided by v); Korthikanti et al. 2022 (micro-batches in flight). Exact where the formula is exact.
"""

from __future__ import annotations

import pytest

from dse.engines.training import Schedule
from dse.engines.training.schedules import bubble_fraction, first_stage_in_flight, pipeline_time
from dse.engines.training.timeline import simulate_timeline, stage_order

CASES = [(4, 8), (8, 16), (4, 4), (2, 6), (8, 64)]


@pytest.mark.parametrize(("K", "M"), CASES)
def test_gpipe_bubble_is_exact(K, M):
    """GPipe: (K-1)/(M+K-1) exactly, from the closed form and from the replayed timeline."""
    assert bubble_fraction(stages=K, micro_batches=M) == pytest.approx((K - 1) / (M + K - 1), rel=1e-15)
    t_f, t_b = 1.0, 2.0
    timeline = simulate_timeline(
        schedule=Schedule.GPIPE,
        stages=K,
        micro_batches=M,
        virtual_stages=1,
        chunk_forward_s=t_f,
        chunk_backward_s=t_b,
        send_s=0.0,
    )
    busy = M * (t_f + t_b)
    assert 1 - busy / timeline.pipeline_end_s == pytest.approx((K - 1) / (M + K - 1), rel=1e-12)
    idle = sum(e.end_s - e.start_s for e in timeline.events if e.operation == "bubble" and e.stage == 0)
    assert idle / timeline.pipeline_end_s == pytest.approx((K - 1) / (M + K - 1), rel=1e-12)


@pytest.mark.parametrize(("K", "M"), CASES)
@pytest.mark.parametrize(
    ("schedule", "v"),
    [(Schedule.GPIPE, 1), (Schedule.ONE_F_ONE_B, 1), (Schedule.INTERLEAVED, 2), (Schedule.INTERLEAVED, 4)],
)
def test_replay_matches_closed_form_for_equal_stages(K, M, schedule, v):
    """(M + (K-1)/v) * (t_f + t_b) for equal stages: the replay and the closed form agree exactly."""
    if schedule == Schedule.INTERLEAVED and M % K:
        pytest.skip("interleaving needs M divisible by K")
    t_f, t_b = 1.0, 2.0
    timeline = simulate_timeline(
        schedule=schedule,
        stages=K,
        micro_batches=M,
        virtual_stages=v,
        chunk_forward_s=t_f / v,
        chunk_backward_s=t_b / v,
        send_s=0.0,
    )
    closed = pipeline_time(
        slowest_stage_s=t_f + t_b, sum_of_stages_s=K * (t_f + t_b), micro_batches=M, virtual_stages=v
    )
    assert timeline.pipeline_end_s == pytest.approx(float(closed), rel=1e-12)
    assert float(closed) == pytest.approx((M + (K - 1) / v) * (t_f + t_b))


def _max_in_flight_on_first_stage(schedule, K, M, v):
    in_flight = peak = 0
    for operation, _, _ in stage_order(schedule=schedule, stages=K, stage=0, micro_batches=M, virtual_stages=v):
        in_flight += 1 if operation == "F" else -1
        peak = max(peak, in_flight)
    return peak / v  # chunks of 1/v of the stage's layers


@pytest.mark.parametrize(("K", "M"), [(4, 8), (8, 16), (4, 4)])
def test_in_flight_formula_matches_the_schedule_orders(K, M):
    """The replayed orders keep M (GPipe) and min(K, M) (1F1B) micro-batches in flight on stage 1, and
    K*(1 + (K-1)/(K*v)) stage-equivalents with interleaving (Korthikanti 2022; with M = K all are in flight)."""
    for schedule, v in [
        (Schedule.GPIPE, 1),
        (Schedule.ONE_F_ONE_B, 1),
        (Schedule.INTERLEAVED, 2),
        (Schedule.INTERLEAVED, 4),
    ]:
        replayed = _max_in_flight_on_first_stage(schedule, K, M, v)
        formula = float(first_stage_in_flight(schedule=schedule, stages=K, micro_batches=M, virtual_stages=v))
        assert replayed == pytest.approx(formula), (schedule, v)


def test_interleaving_divides_the_bubble_by_v():
    """Narayanan et al. 2021, Section 2.2.2: bubble (K-1)/v of a micro-batch's time."""
    K, M = 8, 32
    assert bubble_fraction(stages=K, micro_batches=M, virtual_stages=4) == pytest.approx((K - 1) / (4 * M + K - 1))


def test_timeline_has_every_operation_once():
    """Each stage runs every micro-batch's forward and backward once per chunk."""
    K, M, v = 4, 8, 2
    timeline = simulate_timeline(
        schedule=Schedule.INTERLEAVED,
        stages=K,
        micro_batches=M,
        virtual_stages=v,
        chunk_forward_s=0.5,
        chunk_backward_s=1.0,
        send_s=0.01,
    )
    for stage in range(K):
        ops = {
            (e.operation, e.micro_batch, e.chunk)
            for e in timeline.events
            if e.stage == stage and e.operation in ("forward", "backward")
        }
        assert len(ops) == 2 * M * v
    sends = [e for e in timeline.events if e.operation == "send"]
    assert len(sends) == 2 * (K * v - 1) * M  # every chunk boundary but the ends, both directions
