"""A reference of the serving loop: the first, array-per-step implementation of `simulate` (numpy over the
running requests every step), kept to check that the aggregate bookkeeping of dse.engines.serving.simulate
gives the same times (tests/engines/test_serving.py). Slow on purpose: clear, not fast."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray

from dse.engines.serving import (
    BLOCK_SHIFT,
    BLOCK_TOKENS,
    FloatArray,
    IterationTable,
    Requests,
    SchedulerConfig,
    SimulationResult,
)


def _blocks(tokens: NDArray[np.int64]) -> NDArray[np.int64]:
    """KV blocks that hold each count of tokens (a shift: BLOCK_TOKENS is 2**BLOCK_SHIFT)."""
    return (tokens + (BLOCK_TOKENS - 1)) >> BLOCK_SHIFT


def _blocks_of(tokens: int) -> int:
    return -(-tokens // BLOCK_TOKENS)


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, float, float, float]] = []

    def add(self, t: float, dt: float, k: int, b: int, p: int, queue: int, kv: int) -> None:
        self.rows.append((t, dt, float(k), float(b), float(p), float(queue), float(kv)))

    def arrays(self) -> list[FloatArray]:
        data = np.asarray(self.rows, dtype=np.float64).reshape(-1, 7)
        return [data[:, i].copy() for i in range(7)]


def reference_simulate(requests: Requests, table: IterationTable, config: SchedulerConfig) -> SimulationResult:
    """Run every request to completion (see the module docstring); deterministic, no randomness inside."""
    n = len(requests.arrival_s)
    arrival = requests.arrival_s.astype(np.float64)
    prompt = requests.prompt_tokens.astype(np.int64)
    output = np.maximum(requests.output_tokens.astype(np.int64), 1)
    cached = np.floor(prompt * min(max(config.prefix_hit_rate, 0.0), 1.0)).astype(np.int64)
    cached = np.minimum(cached, prompt - 1)  # at least one prompt token is computed
    # per-request state
    prefill_len = prompt.copy()  # KV tokens written by the prefill (prompt; + generated after a preemption)
    prefill_left = prompt - cached  # tokens still to compute
    generated = np.zeros(n, dtype=np.int64)
    kv_tokens = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    capacity = int(config.kv_capacity_blocks)
    budget = max(int(config.token_budget), 1)
    max_running = max(int(config.max_running), 1)
    steps = max(int(config.scheduler_steps), 1)  # a decode-only iteration runs a block of this many

    waiting: deque[int] = deque()
    running: list[int] = []  # admission order (the last is the newest)
    next_arrival = 0
    used_blocks = 0
    reserved_blocks = 0  # no-evict: the blocks of every running request's prompt and output
    t = 0.0
    done = 0
    preemptions = 0
    busy = prefill_busy = 0.0
    in_system_area = kv_area = 0.0
    peak_kv = 0
    iterations = 0
    rec = _Recorder()
    hold_admission = False
    n_prefilling = 0  # running requests with prompt tokens still to compute
    run_cache: NDArray[np.int64] | None = None  # `running` as an array (rebuilt when it changes)
    undelivered: NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # first tokens the next step delivers
    finished_undelivered: NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # completions the next step delivers

    def finish_step(dt: float, k: int, b: int, p: int, t_dec: float, t_pre: float) -> None:
        nonlocal t, busy, prefill_busy, in_system_area, kv_area, peak_kv, iterations
        rec.add(t, dt, k, b, p, len(waiting), used_blocks)
        in_system_area += dt * (len(waiting) + len(running))
        kv_area += dt * used_blocks
        peak_kv = max(peak_kv, used_blocks)
        busy += dt
        share = t_pre / (t_pre + t_dec) if t_pre + t_dec > 0 else 0.0
        prefill_busy += dt * share
        iterations += k
        t += dt

    while done < n:
        while next_arrival < n and arrival[next_arrival] <= t:
            waiting.append(next_arrival)
            next_arrival += 1
        # admission (FCFS): blocks for the prompt, a free running slot; without chunking, prompts up to the budget
        admitted_tokens = 0
        while waiting and len(running) < max_running and not hold_admission:
            r = waiting[0]
            need = _blocks_of(int(prefill_len[r]))
            whole = _blocks_of(int(prompt[r] + output[r]))
            if (reserved_blocks + whole if config.guaranteed_no_evict else used_blocks + need) > capacity:
                break
            if not config.chunked_prefill and admitted_tokens > 0 and admitted_tokens + prefill_left[r] > budget:
                break
            waiting.popleft()
            running.append(r)
            n_prefilling += 1
            run_cache = None
            kv_tokens[r] = prefill_len[r]
            used_blocks += need
            reserved_blocks += whole
            admitted_tokens += int(prefill_left[r])
        if not running:
            if next_arrival >= n:  # nothing admissible ever again (a prompt larger than the cache)
                break
            idle = arrival[next_arrival] - t
            if idle > 0:
                in_system_area += idle * len(waiting)
                rec.add(t, idle, 0, 0, 0, len(waiting), used_blocks)
                t = float(arrival[next_arrival])
            continue
        if run_cache is None:
            run_cache = np.asarray(running, dtype=np.int64)
        run = run_cache
        if n_prefilling:
            left = prefill_left[run]
            dec = run[left == 0]
            # prefill chunks (in admission order)
            if config.chunked_prefill:
                room = max(budget - len(dec), 0)
                chunk = np.minimum(left, np.maximum(room - (np.cumsum(left) - left), 0))
            elif config.prompts_join_decodes:
                # whole prompts, in order, while they fit beside the decodes (the first alone when none decodes)
                take = (left > 0) & (np.cumsum(left) <= budget - len(dec))
                if not take.any() and len(dec) == 0:
                    take = np.cumsum(left > 0) == 1
                chunk = np.where(take, left, 0)
            else:
                chunk = left.copy()
            p_tokens = int(chunk.sum())
        else:
            dec, p_tokens = run, 0
        decode_now = dec if (config.chunked_prefill or config.prompts_join_decodes or p_tokens == 0) else dec[:0]
        b = len(decode_now)
        # KV blocks for the decode step: preempt the newest until they fit
        if b:
            ahead = steps if p_tokens == 0 else 1  # KV slots for the whole block, taken when it is scheduled
            grow = int((_blocks(kv_tokens[decode_now] + ahead) - _blocks(kv_tokens[decode_now])).sum())
            if used_blocks + grow > capacity:
                if len(running) == 1:  # one request that outgrows the whole cache: it is dropped
                    gone_id = running.pop()
                    reserved_blocks -= _blocks_of(int(prompt[gone_id] + output[gone_id]))
                    run_cache = None
                    used_blocks -= _blocks_of(int(kv_tokens[gone_id]))
                    kv_tokens[gone_id] = 0
                    done += 1
                    continue
                hold_admission = True  # no re-admission before the next iteration runs (no livelock)
                victim = running.pop()
                reserved_blocks -= _blocks_of(int(prompt[victim] + output[victim]))
                run_cache = None
                n_prefilling -= int(prefill_left[victim] > 0)
                used_blocks -= _blocks_of(int(kv_tokens[victim]))
                prefill_len[victim] = prompt[victim] + generated[victim]
                prefill_left[victim] = prefill_len[victim]
                kv_tokens[victim] = 0
                waiting.appendleft(victim)
                preemptions += 1
                continue
        ctx = float(kv_tokens[decode_now].sum()) / b if b else 1.0
        k = 1
        first_done = 0
        if p_tokens == 0 and b:
            # a run of identical decode iterations: until a completion, an arrival that could be admitted,
            # or the free KV blocks (each iteration grows each request by one token)
            remaining = output[decode_now] - generated[decode_now]
            first_done = k = int(remaining.min())
            step0 = table.at(b, 0, ctx)
            # a waiting request is blocked by KV blocks, which only a completion frees; an arrival
            # matters when the queue is empty and a running slot is free
            if not waiting and len(running) < max_running and next_arrival < n:
                k = min(k, max(1, math.ceil((arrival[next_arrival] - t) / max(step0, 1e-12))))
            free = capacity - used_blocks
            if steps > 1:  # whole blocks, through the one holding the bound; beyond the first, those the KV holds
                k = steps * max(1, min(-(-k // steps), BLOCK_TOKENS * (free // b) // steps))
            else:
                k = max(1, min(k, BLOCK_TOKENS * (free // b)))
            ctx = ctx + (k - 1) / 2.0
        # the prefill share of a mixed iteration (its cost split): by the two halves' standalone times
        t_dec, t_pre = (
            (table.at(b, 0, ctx), table.at(0, p_tokens, ctx)) if b and p_tokens else (float(b), float(p_tokens))
        )
        dt = table.at(b, p_tokens, ctx) * k
        if len(undelivered) or len(finished_undelivered):  # asynchronous output processing: seen when this step's
            launch = table.host.launch_s(b / table.host_ranks)  # model call returns
            seen = t + (dt / k if p_tokens or steps == 1 else min(launch, dt / k))
            first[undelivered] = seen
            finish[finished_undelivered] = seen
            undelivered = undelivered[:0]
            finished_undelivered = finished_undelivered[:0]
        if b:
            old = int(_blocks(kv_tokens[decode_now]).sum())
            kv_tokens[decode_now] += k
            used_blocks += int(_blocks(kv_tokens[decode_now]).sum()) - old
            generated[decode_now] += k
        finish_step(dt, k, b, p_tokens, t_dec, t_pre)
        hold_admission = False
        if p_tokens:
            prefill_left[run] = left - chunk
            completed = run[(left > 0) & (left - chunk == 0)]
            n_prefilling -= len(completed)
            fresh = completed[generated[completed] == 0]
            first[fresh] = t
            generated[completed] += 1
            if config.first_token_with_next_step:
                undelivered = fresh[generated[fresh] < output[fresh]]
            finished = run[(generated[run] >= output[run]) & (prefill_left[run] == 0)]
        elif k >= first_done:
            finished = decode_now[generated[decode_now] >= output[decode_now]]
        else:
            finished = decode_now[:0]
        # completions
        if len(finished):
            run_cache = None
            finish[finished] = t
            first_missing = finished[np.isnan(first[finished])]
            first[first_missing] = t
            if config.first_token_with_next_step and steps > 1 and p_tokens == 0:
                # each seen after the next step's host launch: inside the block, or the next step's (its last)
                last_step = output[finished] - (generated[finished] - k)  # the block's iteration of its last token
                inside = last_step < k
                step_launch = min(table.host.step_launch_s(b / table.host_ranks), dt / k)
                finish[finished[inside]] = t - dt + last_step[inside] * dt / k + step_launch
                finished_undelivered = finished[~inside]
            done += len(finished)
            gone = set(finished.tolist())
            used_blocks -= int(_blocks(kv_tokens[finished]).sum())
            reserved_blocks -= int(_blocks(prompt[finished] + output[finished]).sum())
            running = [r for r in running if r not in gone]
    steps = rec.arrays()
    makespan = max(t, 1e-12)
    return SimulationResult(
        arrival_s=arrival,
        first_token_s=first,
        finish_s=finish,
        prompt_tokens=prompt,
        output_tokens=output,
        preemptions=preemptions,
        makespan_s=makespan,
        busy_s=busy,
        prefill_busy_s=prefill_busy,
        mean_in_system=in_system_area / makespan,
        mean_kv_blocks=kv_area / makespan,
        peak_kv_blocks=float(peak_kv),
        iterations=iterations,
        step_start_s=steps[0],
        step_duration_s=steps[1],
        step_iterations=steps[2],
        step_decode_batch=steps[3],
        step_prefill_tokens=steps[4],
        step_queue=steps[5],
        step_kv_blocks=steps[6],
    )
