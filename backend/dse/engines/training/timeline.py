"""One iteration of one plan as a timeline: each stage's forward, backward, send and idle spans.

A small list scheduler replays the schedule's per-stage order of operations (GPipe, 1F1B,
Megatron's interleaved 1F1B) with the dependencies between stages; an operation starts when its
stage is free and its input has arrived. This is for one plan (it draws a chart), so it loops;
plan search uses the closed form of `schedules.pipeline_time`, which it matches for equal stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.engines.training.codes import Schedule

#: Operations above this are not drawn (a chart of more bars is unreadable and slow).
MAX_TIMELINE_OPERATIONS = 40_000


@dataclass(frozen=True)
class TimelineEvent:
    stage: int
    #: "forward", "backward", "send", "context_parallel" (the exposed K/V exchange), "all_to_all" (MoE token
    #: dispatch and combine; both inside a forward or backward span, drawn as their own segments at its end:
    #: the exchange, then the all-to-alls), "bubble", "data_parallel" or "optimizer".
    operation: str
    micro_batch: int
    chunk: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Timeline:
    events: list[TimelineEvent]
    pipeline_end_s: float
    iteration_end_s: float


def stage_order(
    *, schedule: int, stages: int, stage: int, micro_batches: int, virtual_stages: int
) -> list[tuple[str, int, int]]:
    """The (operation, micro-batch, chunk) operations one stage runs, in order."""
    p, m, v, i = stages, micro_batches, virtual_stages, stage
    if schedule == Schedule.GPIPE:
        return [("F", k, 0) for k in range(m)] + [("B", k, 0) for k in range(m)]
    if schedule == Schedule.ONE_F_ONE_B or v == 1:
        warmup = min(p - i - 1, m)
        ops = [("F", k, 0) for k in range(warmup)]
        for k in range(m - warmup):
            ops += [("F", warmup + k, 0), ("B", k, 0)]
        return ops + [("B", k, 0) for k in range(m - warmup, m)]

    def forward(k: int) -> tuple[str, int, int]:
        return ("F", (k // (p * v)) * p + k % p, (k // p) % v)

    def backward(k: int) -> tuple[str, int, int]:
        return ("B", (k // (p * v)) * p + k % p, v - 1 - (k // p) % v)

    total = m * v
    warmup = min((p - i - 1) * 2 + (v - 1) * p, total)
    ops = [forward(k) for k in range(warmup)]
    for k in range(total - warmup):
        ops += [forward(warmup + k), backward(k)]
    return ops + [backward(k) for k in range(total - warmup, total)]


def simulate_timeline(
    *,
    schedule: int,
    stages: int,
    micro_batches: int,
    virtual_stages: int,
    chunk_forward_s: float,
    chunk_backward_s: float,
    send_s: float,
    last_stage_extra_forward_s: float = 0.0,
    last_stage_extra_backward_s: float = 0.0,
    data_parallel_s: float = 0.0,
    optimizer_s: float = 0.0,
    first_stage_extra_forward_s: float = 0.0,
    first_stage_extra_backward_s: float = 0.0,
    context_parallel_forward_s: float = 0.0,
    context_parallel_backward_s: float = 0.0,
    chunk_forward_all_to_all_s: float = 0.0,
    chunk_backward_all_to_all_s: float = 0.0,
) -> Timeline:
    """Replays one iteration; raises ValueError above MAX_TIMELINE_OPERATIONS operations. The first stage's first
    chunk adds `first_stage_extra_*` (the embedding; uneven stages: its layers beyond a middle stage's, negative
    when fewer), the last stage's last chunk `last_stage_extra_*`. The chunk times include the exposed
    context-parallel exchange (`context_parallel_*_s`) and the MoE all-to-alls (`chunk_*_all_to_all_s`), each
    drawn as its own segment at the operation's end."""
    p, m, v = stages, micro_batches, virtual_stages
    if 2 * p * m * v > MAX_TIMELINE_OPERATIONS:
        raise ValueError(f"{2 * p * m * v} operations: too many to draw (at most {MAX_TIMELINE_OPERATIONS})")
    orders = [stage_order(schedule=schedule, stages=p, stage=i, micro_batches=m, virtual_stages=v) for i in range(p)]
    ready: dict[
        tuple[str, int, int, int], float
    ] = {}  # (operation, mb, chunk, stage) -> when its output is at the next stage
    next_op = [0] * p
    free_at = [0.0] * p
    events: list[TimelineEvent] = []

    def input_ready(operation: str, mb: int, chunk: int, stage: int) -> float | None:
        if operation == "F":
            if stage == 0:
                return 0.0 if chunk == 0 else ready.get(("F", mb, chunk - 1, p - 1))
            return ready.get(("F", mb, chunk, stage - 1))
        if stage == p - 1:
            if chunk == v - 1:
                return ready.get(("F", mb, chunk, stage))
            return ready.get(("B", mb, chunk + 1, 0))
        return ready.get(("B", mb, chunk, stage + 1))

    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for stage in range(p):  # replaying one plan's schedule, operation by operation
            while next_op[stage] < len(orders[stage]):
                operation, mb, chunk = orders[stage][next_op[stage]]
                arrival = input_ready(operation, mb, chunk, stage)
                if arrival is None:
                    break
                start = max(free_at[stage], arrival)
                last_chunk = stage == p - 1 and chunk == v - 1
                first_chunk = stage == 0 and chunk == 0
                if operation == "F":
                    duration = chunk_forward_s + (last_stage_extra_forward_s if last_chunk else 0.0)
                    duration += first_stage_extra_forward_s if first_chunk else 0.0
                    sends = not last_chunk
                    exchange = context_parallel_forward_s
                else:
                    duration = chunk_backward_s + (last_stage_extra_backward_s if last_chunk else 0.0)
                    duration += first_stage_extra_backward_s if first_chunk else 0.0
                    sends = not (stage == 0 and chunk == 0)
                    exchange = context_parallel_backward_s
                end = start + duration
                a2a = chunk_forward_all_to_all_s if operation == "F" else chunk_backward_all_to_all_s
                a2a = min(max(a2a, 0.0), duration)
                exchange = min(max(exchange, 0.0), duration - a2a)
                name = "forward" if operation == "F" else "backward"
                events.append(TimelineEvent(stage, name, mb, chunk, start, end - exchange - a2a))
                if exchange > 0.0:
                    events.append(TimelineEvent(stage, "context_parallel", mb, chunk, end - exchange - a2a, end - a2a))
                if a2a > 0.0:  # the span's all-to-alls, as one segment at its end
                    events.append(TimelineEvent(stage, "all_to_all", mb, chunk, end - a2a, end))
                if sends and p > 1:
                    events.append(TimelineEvent(stage, "send", mb, chunk, end, end + send_s))
                    end += send_s
                ready[(operation, mb, chunk, stage)] = end if p > 1 or operation == "B" else start + duration
                free_at[stage] = end
                next_op[stage] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise RuntimeError("schedule deadlock")  # cannot happen for the orders above
    pipeline_end = max(free_at)
    for stage in range(p):
        busy = sorted((e.start_s, e.end_s) for e in events if e.stage == stage)
        cursor = 0.0
        for start, end in busy:
            if start > cursor + 1e-15:
                events.append(TimelineEvent(stage, "bubble", -1, -1, cursor, start))
            cursor = max(cursor, end)
        if pipeline_end > cursor + 1e-15:
            events.append(TimelineEvent(stage, "bubble", -1, -1, cursor, pipeline_end))
        events.append(TimelineEvent(stage, "data_parallel", -1, -1, pipeline_end, pipeline_end + data_parallel_s))
        events.append(
            TimelineEvent(
                stage, "optimizer", -1, -1, pipeline_end + data_parallel_s, pipeline_end + data_parallel_s + optimizer_s
            )
        )
    return Timeline(
        events=events, pipeline_end_s=pipeline_end, iteration_end_s=pipeline_end + data_parallel_s + optimizer_s
    )
