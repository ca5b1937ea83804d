"""The serving engine: determinism, conservation, Little's law, the KV cache, saturation, and the iteration
table against the fixed-batch inference engine (internal consistency)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.inference import Workload, model_shape, run_inference
from dse.engines.serving import (
    HostCost,
    IterationTable,
    Requests,
    SchedulerConfig,
    expected_accepted_tokens,
    host_busy_s,
    iteration_time_table,
    simulate,
    speculative_table,
)
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve
from tests.engines.serving_reference import reference_simulate


@pytest.fixture(scope="module")
def llama7b():
    r = resolve(ServingInputs(model="llama2-7b", accelerator="a100-80gb", request_lengths=None), default_catalog())
    return r, studies.table(r), studies.memory(r)


def _fixed(n: int, rate: float, prompt: int = 256, output: int = 128, seed: int = 0) -> Requests:
    rng = np.random.default_rng(seed)
    return Requests(
        arrival_s=np.cumsum(rng.exponential(1 / rate, n)),
        prompt_tokens=np.full(n, prompt, dtype=np.int64),
        output_tokens=np.full(n, output, dtype=np.int64),
    )


def _config(blocks: int, **kw) -> SchedulerConfig:
    return SchedulerConfig(
        token_budget=kw.get("budget", 2048),
        chunked_prefill=kw.get("chunked", True),
        max_running=kw.get("max_running", 256),
        kv_capacity_blocks=blocks,
        prefix_hit_rate=kw.get("hit", 0.0),
        guaranteed_no_evict=kw.get("no_evict", False),
        prompts_join_decodes=kw.get("join", False),
        scheduler_steps=kw.get("steps", 1),
    )


def _table_arguments(r, *, max_prefill_tokens: int) -> dict:
    """iteration_time_table's arguments for the resolved scenario: decode batches to 64, contexts to 4096."""
    return {
        "shape": model_shape(r.model),
        "device": studies.device(r),
        "deployment": studies.deployment(r),
        "max_decode_batch": 64,
        "max_prefill_tokens": max_prefill_tokens,
        "max_context_tokens": 4096,
    }


def test_deterministic_for_a_seed(llama7b):
    r, table, mem = llama7b
    a = simulate(studies.requests(r, 5.0, 500), table, _config(mem.kv_capacity_blocks))
    b = simulate(studies.requests(r, 5.0, 500), table, _config(mem.kv_capacity_blocks))
    assert np.array_equal(a.finish_s, b.finish_s) and np.array_equal(a.first_token_s, b.first_token_s)


@pytest.mark.parametrize("chunked", [True, False])
def test_every_request_finishes_after_its_first_token(llama7b, chunked):
    _, table, mem = llama7b
    reqs = _fixed(400, 8.0)
    sim = simulate(reqs, table, _config(mem.kv_capacity_blocks, chunked=chunked))
    assert np.isfinite(sim.finish_s).all()
    assert (sim.first_token_s >= sim.arrival_s).all() and (sim.finish_s >= sim.first_token_s).all()
    assert sim.iterations > 0 and sim.busy_s <= sim.makespan_s + 1e-9


def test_littles_law_at_steady_state(llama7b):
    _, table, mem = llama7b
    rate = 6.0
    sim = simulate(_fixed(2000, rate), table, _config(mem.kv_capacity_blocks))
    served_rate = len(sim.arrival_s) / sim.makespan_s
    assert sim.mean_in_system == pytest.approx(served_rate * float(np.mean(sim.e2e_s)), rel=0.05)
    assert served_rate == pytest.approx(rate, rel=0.1)


def test_no_preemption_when_the_cache_is_ample_and_some_when_it_is_tight(llama7b):
    _, table, mem = llama7b
    reqs = _fixed(300, 50.0, prompt=512, output=512)
    ample = simulate(reqs, table, _config(mem.kv_capacity_blocks, max_running=64))  # 64 x 1024 tokens fit
    assert ample.preemptions == 0
    tight = simulate(reqs, table, _config(64 * 20))  # 20 requests' prompts, not their outputs
    assert tight.preemptions > 0
    assert np.isfinite(tight.finish_s).all()
    assert tight.peak_kv_blocks <= 64 * 20


def test_prefix_cache_hits_cut_time_to_first_token(llama7b):
    _, table, mem = llama7b
    reqs = _fixed(300, 10.0, prompt=2048, output=32)
    cold = simulate(reqs, table, _config(mem.kv_capacity_blocks))
    warm = simulate(reqs, table, _config(mem.kv_capacity_blocks, hit=0.9))
    assert np.mean(warm.ttft_s) < 0.5 * np.mean(cold.ttft_s)


def test_saturated_decode_throughput_matches_the_table(llama7b):
    """Everything arrives at once, tiny prompts: the server decodes max_running requests back to back."""
    _, table, mem = llama7b
    batch, output = 64, 2000
    reqs = Requests(
        arrival_s=np.zeros(batch * 4),
        prompt_tokens=np.full(batch * 4, 16, dtype=np.int64),
        output_tokens=np.full(batch * 4, output, dtype=np.int64),
    )
    sim = simulate(reqs, table, _config(mem.kv_capacity_blocks, max_running=batch))
    tokens_per_s = float(sim.output_tokens.sum()) / sim.makespan_s
    expected = batch / table.at(batch, 0, 16 + output / 2)
    assert tokens_per_s == pytest.approx(expected, rel=0.05)


def test_decode_iteration_equals_the_inference_engines_decode_step(llama7b):
    """Internal consistency: a pure-decode iteration of the table is the inference engine's GPU-only TPOT at the
    same batch and context (the same per-op model on the same Device)."""
    r, table, _ = llama7b
    assert isinstance(table, IterationTable)
    batch = table.decode_batch[-3]
    context = table.context_tokens[3]
    result = run_inference(
        system="gpu_only",
        shape=model_shape(r.model),
        device=studies.device(r),
        deployment=studies.deployment(r),
        workload=Workload(
            batch=batch, prompt_tokens=context, output_tokens=2.0, context_tokens=context, peak_context_tokens=context
        ),
    )
    assert table.at(batch, 0, context) == pytest.approx(float(result.time_per_output_token_s), rel=1e-9)


def test_more_load_more_latency(llama7b):
    _, table, mem = llama7b
    low = simulate(_fixed(400, 2.0), table, _config(mem.kv_capacity_blocks))
    high = simulate(_fixed(400, 40.0), table, _config(mem.kv_capacity_blocks))
    assert np.median(high.tpot_s) > np.median(low.tpot_s)


MOE_MLA = [("mixtral-8x7b", "h100-sxm", 2, 1), ("deepseek-v3", "h200-sxm", 8, 1), ("deepseek-v3", "h200-sxm", 8, 8)]


@pytest.mark.parametrize(("model", "accelerator", "tp", "ep"), MOE_MLA)
def test_moe_and_mla_decode_iterations_equal_the_inference_engines(model, accelerator, tp, ep):
    """A MoE / latent-attention decode iteration of the table is the inference engine's GPU-only TPOT (expected
    distinct experts touched by the batch, the MLA latent cache, expert parallelism): the same per-op model."""
    r = resolve(
        ServingInputs(
            model=model,
            accelerator=accelerator,
            tensor_parallel=tp,
            weight_dtype="fp8",
            expert_parallel=ep,
            expert_load_imbalance=1.2,
        ),
        default_catalog(),
    )
    table = studies.table(r)
    batch, context = table.decode_batch[-4], table.context_tokens[2]
    result = run_inference(
        system="gpu_only",
        shape=model_shape(r.model),
        device=studies.device(r),
        deployment=studies.deployment(r),
        workload=Workload(
            batch=batch, prompt_tokens=context, output_tokens=2.0, context_tokens=context, peak_context_tokens=context
        ),
    )
    assert table.at(batch, 0, context) == pytest.approx(float(result.time_per_output_token_s), rel=1e-9)


def test_expected_accepted_tokens_is_leviathans_equation_one():
    assert expected_accepted_tokens(4, 0.6) == pytest.approx((1 - 0.6**5) / (1 - 0.6), rel=1e-15)
    assert expected_accepted_tokens(4, 0.0) == 1.0
    assert expected_accepted_tokens(3, 1.0) == 4.0


def test_speculative_table_is_the_drafts_k_steps_plus_the_targets_verification(llama7b):
    r, _, _ = llama7b
    kw = _table_arguments(r, max_prefill_tokens=2048)
    verify = iteration_time_table(**kw, query_tokens_per_request=5)
    draft = iteration_time_table(**kw)
    spec = speculative_table(verify, draft, 4)
    i, j, c = 5, 3, 2
    assert spec.time_s[i, j, c] == pytest.approx(
        verify.time_s[i, j, c] + draft.time_s[i, j, c] + 3 * draft.time_s[i, 0, c], rel=1e-12
    )
    assert spec.time_s[0, j, c] == pytest.approx(verify.time_s[0, j, c] + draft.time_s[0, j, c], rel=1e-12)
    assert verify.time_s[i, 0, c] > draft.time_s[i, 0, c]  # verifying 5 tokens per request costs more than 1


@pytest.mark.parametrize("gain", [1.0, 2.3056, 3.5])
def test_tokens_per_step_advance_every_request_and_scale_saturated_throughput(llama7b, gain):
    """Each decode iteration yields `gain` tokens per request on average: saturated throughput is B * gain / T."""
    _, table, mem = llama7b
    batch, output = 64, 2000
    reqs = Requests(
        arrival_s=np.zeros(batch * 4),
        prompt_tokens=np.full(batch * 4, 16, dtype=np.int64),
        output_tokens=np.full(batch * 4, output, dtype=np.int64),
    )
    config = dataclasses.replace(_config(mem.kv_capacity_blocks, max_running=batch), tokens_per_step=gain)
    sim = simulate(reqs, table, config)
    assert np.isfinite(sim.finish_s).all()
    tokens_per_s = float(sim.output_tokens.sum()) / sim.makespan_s
    assert tokens_per_s == pytest.approx(batch * gain / table.at(batch, 0, 16 + output / 2), rel=0.05)


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_guaranteed_no_evict_never_preempts_and_runs_fewer_requests_at_once(llama7b, gain):
    """TensorRT-LLM's GUARANTEED_NO_EVICT: a request starts only when its prompt and whole output fit beside every
    running request's, so none is preempted; the cache then holds 20 x 1024 / 1200 = 17 requests at once where
    vLLM's policy starts as many prompts as fit (20 of 1024 tokens' blocks) and preempts."""
    _, table, _ = llama7b
    blocks = 64 * 20
    reqs = _fixed(300, 50.0, prompt=500, output=700)
    evicting = simulate(reqs, table, dataclasses.replace(_config(blocks), tokens_per_step=gain))
    no_evict = simulate(reqs, table, dataclasses.replace(_config(blocks, no_evict=True), tokens_per_step=gain))
    assert evicting.preemptions > 0 and no_evict.preemptions == 0
    assert np.isfinite(no_evict.finish_s).all()
    whole = -(-(500 + 700 + 1 - 1) // 16)  # blocks each holds to completion (1 budget token per decode)
    assert float(no_evict.step_decode_batch.max()) == blocks // whole
    assert float(no_evict.step_decode_batch.max()) < float(evicting.step_decode_batch.max())
    assert no_evict.peak_kv_blocks <= blocks


def test_whole_prompts_beside_the_decodes_never_stall_them_nor_split():
    """TensorRT-LLM's in-flight batching without chunked context: a prompt runs whole in the decodes' iteration
    when it fits in the budget beside them (every iteration with prefill tokens decodes too, once a request
    decodes), never split; vLLM's unchunked scheduler runs prompts in prefill-only iterations."""
    r = resolve(ServingInputs(model="llama2-7b", accelerator="a100-80gb", request_lengths=None), default_catalog())
    table, mem = studies.table(r), studies.memory(r)
    reqs = _fixed(300, 20.0, prompt=300, output=64)
    apart = simulate(reqs, table, _config(mem.kv_capacity_blocks, chunked=False))
    beside = simulate(reqs, table, _config(mem.kv_capacity_blocks, chunked=False, join=True))
    mixed = (beside.step_prefill_tokens > 0) & (beside.step_decode_batch > 0)
    assert mixed.any() and not ((apart.step_prefill_tokens > 0) & (apart.step_decode_batch > 0)).any()
    assert set(np.unique(beside.step_prefill_tokens[beside.step_prefill_tokens > 0] % 300)) == {0.0}  # whole
    assert beside.tbt_percentile_s(99) < apart.tbt_percentile_s(99)  # no decode waits out a prefill-only step
    budget = 2048
    assert float((beside.step_prefill_tokens + beside.step_decode_batch).max()) <= budget


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_a_tight_cache_is_never_overrun(llama7b, gain):
    _, table, _ = llama7b
    reqs = _fixed(300, 50.0, prompt=500, output=700)
    config = dataclasses.replace(_config(64 * 20), tokens_per_step=gain)
    sim = simulate(reqs, table, config)
    assert sim.preemptions > 0 and np.isfinite(sim.finish_s).all()
    assert sim.peak_kv_blocks <= 64 * 20 and float(sim.step_kv_blocks.max()) <= 64 * 20


def test_decode_only_requests_arrive_with_their_kv_cache(llama7b):
    """The decode pool of a disaggregated server: no prefill iterations, the first token on admission."""
    _, table, mem = llama7b
    reqs = _fixed(300, 5.0, prompt=1024, output=64)
    config = dataclasses.replace(_config(mem.kv_capacity_blocks), decode_only=True)
    sim = simulate(reqs, table, config)
    assert np.isfinite(sim.finish_s).all()
    assert float(sim.step_prefill_tokens.max()) == 0.0
    wait = sim.first_token_s - sim.arrival_s  # admitted when the iteration under way ends
    assert (wait >= 0).all() and wait.max() <= 1.01 * float(np.max(sim.step_duration_s / sim.step_iterations.clip(1)))
    assert 63 <= sim.iterations < 300 * 63  # every request decodes 63 tokens, batched


@pytest.mark.parametrize(
    ("chunked", "blocks", "rate", "hit", "no_evict", "join", "steps"),
    [
        (True, None, 8.0, 0.0, False, False, 1),
        (False, None, 30.0, 0.0, False, False, 1),
        (True, 600, 50.0, 0.0, False, False, 1),
        (False, 600, 50.0, 0.3, False, False, 1),
        (True, 600, 50.0, 0.0, True, False, 1),
        (False, 600, 50.0, 0.3, True, False, 1),
        (False, None, 30.0, 0.0, False, True, 1),
        (False, 600, 50.0, 0.3, True, True, 1),
        (False, 600, 50.0, 0.0, False, True, 1),
        (False, None, 8.0, 0.0, False, False, 10),
        (False, None, 30.0, 0.0, False, False, 10),
        (False, 600, 50.0, 0.3, False, False, 10),
        (False, 600, 50.0, 0.0, True, False, 7),
    ],
)
def test_the_aggregate_loop_gives_the_reference_loops_times(llama7b, chunked, blocks, rate, hit, no_evict, join, steps):
    """The O(1)-per-step loop (decode set as aggregates) against the array-per-step reference: the same
    first-token and finish times, preemptions and steps, with and without chunking, with a tight cache, under
    either admission policy, whole prompts in prefill-only iterations or beside the decodes, with the scheduler
    run every iteration or once per multi-step block."""
    r, table, mem = llama7b
    reqs = studies.requests(r, rate, 600)
    config = _config(
        blocks or mem.kv_capacity_blocks, chunked=chunked, hit=hit, no_evict=no_evict, join=join, steps=steps
    )
    fast, slow = simulate(reqs, table, config), reference_simulate(reqs, table, config)
    assert np.allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9, equal_nan=True)
    assert np.allclose(fast.finish_s, slow.finish_s, rtol=1e-9, equal_nan=True)
    assert (fast.preemptions, fast.iterations, len(fast.step_start_s)) == (
        slow.preemptions,
        slow.iterations,
        len(slow.step_start_s),
    )
    assert fast.peak_kv_blocks == slow.peak_kv_blocks
    assert fast.prefill_busy_s == pytest.approx(slow.prefill_busy_s, rel=1e-9)


HOST = HostCost(fixed_s=1e-3, per_sequence_s=2e-5)


def test_a_host_cost_adds_fixed_plus_per_request_to_every_nonempty_iteration(llama7b):
    """time with host = time without + fixed + per_sequence * (B + P / min(P, prompt)), exactly, on the grid."""
    r, _, _ = llama7b
    kw = _table_arguments(r, max_prefill_tokens=4096)
    bare = iteration_time_table(**kw, prompt_tokens=300.0)
    host = iteration_time_table(**kw, prompt_tokens=300.0, host=HOST)
    b = np.asarray(bare.decode_batch)[:, None, None]
    p = np.asarray(bare.prefill_tokens)[None, :, None]
    prompts = np.where(p > 0, np.maximum(p, 1.0) / np.clip(p, 1.0, 300.0), 0.0)
    expected = bare.time_s + np.where(b + p > 0, 1e-3 + 2e-5 * (b + prompts), 0.0)
    assert np.array_equal(host.time_s, expected)
    assert host.time_s[0, 0, 0] == 0.0 and host.host is HOST
    # a decode of 64 requests: 1 ms + 64 x 20 us; a prefill of 3000 tokens of 300-token prompts: 10 prompts
    assert host.host_time_s(np.array(64.0), np.array(0.0)) == pytest.approx(1e-3 + 64 * 2e-5, rel=1e-12)
    assert host.host_time_s(np.array(0.0), np.array(3000.0)) == pytest.approx(1e-3 + 10 * 2e-5, rel=1e-12)


def test_a_multi_step_block_spreads_its_per_block_host_work_over_its_decode_steps():
    """schedule + inputs once per block: a decode iteration of a ten-step block pays a tenth, a prefill (a block of
    one step) all of it; the per-step part every iteration."""
    cost = HostCost(
        fixed_s=1e-3, per_sequence_s=0.0, block_fixed_s=2e-3, block_per_sequence_s=1e-5, decode_block_steps=10
    )
    decode = cost.time_s(np.array([0.0, 100.0]), np.array([0.0, 0.0]))
    prefill = cost.time_s(np.array(3.0), np.array(600.0))
    assert decode.tolist() == pytest.approx([0.0, 1e-3 + (2e-3 + 100 * 1e-5) / 10], rel=1e-12)
    assert float(prefill) == pytest.approx(1e-3 + 2e-3 + 3 * 1e-5, rel=1e-12)


def test_a_speculative_table_counts_the_host_cost_once(llama7b):
    r, _, _ = llama7b
    kw = _table_arguments(r, max_prefill_tokens=4096)
    bare = speculative_table(iteration_time_table(**kw, query_tokens_per_request=3), iteration_time_table(**kw), 2)
    host = speculative_table(
        iteration_time_table(**kw, query_tokens_per_request=3, host=HOST), iteration_time_table(**kw), 2
    )
    b = np.asarray(bare.decode_batch)[:, None, None]
    p = np.asarray(bare.prefill_tokens)[None, :, None]
    assert np.allclose(host.time_s - bare.time_s, np.where(b + p > 0, 1e-3 + 2e-5 * (b + np.minimum(p, 1.0)), 0.0))
    assert host.host is HOST


@pytest.mark.parametrize("chunked", [True, False])
def test_the_loops_agree_with_a_host_cost_and_count_it_in_busy_time(llama7b, chunked):
    """Both loops price the host cost through the table; host_busy_s sums it over the recorded steps."""
    r, _, mem = llama7b
    kw = _table_arguments(r, max_prefill_tokens=4096) | {"max_decode_batch": 256}
    bare = iteration_time_table(**kw, prompt_tokens=256.0)
    table = iteration_time_table(**kw, prompt_tokens=256.0, host=HOST)
    reqs = _fixed(500, 20.0)
    config = _config(mem.kv_capacity_blocks, chunked=chunked)
    fast, slow = simulate(reqs, table, config), reference_simulate(reqs, table, config)
    assert np.allclose(fast.finish_s, slow.finish_s, rtol=1e-9, equal_nan=True)
    assert fast.iterations == slow.iterations
    host = host_busy_s(table, fast)
    pre = fast.step_prefill_tokens
    prompts = np.where(pre > 0, np.maximum(pre, 1.0) / np.clip(pre, 1.0, 256.0), 0.0)
    per_step = fast.step_iterations * (1e-3 + 2e-5 * (fast.step_decode_batch + prompts))
    assert host == pytest.approx(float(per_step.sum()), rel=1e-9)
    assert 0.0 < host < fast.busy_s
    assert host_busy_s(bare, simulate(reqs, bare, config)) == 0.0
    assert np.nanmedian(fast.tpot_s) > np.nanmedian(simulate(reqs, bare, config).tpot_s)


def test_speculative_decodes_take_k_plus_one_tokens_of_the_budget(llama7b):
    _, table, mem = llama7b
    reqs = _fixed(400, 20.0, prompt=300, output=200)
    base = _config(mem.kv_capacity_blocks, budget=512, max_running=64)
    config = dataclasses.replace(base, budget_tokens_per_decode=5)
    sim = simulate(reqs, table, config)
    assert np.isfinite(sim.finish_s).all()
    mixed = sim.step_prefill_tokens > 0
    assert (sim.step_prefill_tokens[mixed] + 5 * sim.step_decode_batch[mixed] <= 512).all()
    assert (sim.step_decode_batch[mixed] > 0).any()


def test_a_prefill_of_several_prompts_attends_within_each_prompt(llama7b):
    """P prefill tokens of L-token prompts: P / L causal attentions of L tokens, not one of P (the dense ops
    are the same); a prefill no longer than one prompt is priced as before."""
    r, _, _ = llama7b
    kw = _table_arguments(r, max_prefill_tokens=8192)
    whole = iteration_time_table(**kw)
    prompts = iteration_time_table(**kw, prompt_tokens=256.0)
    pre = np.asarray(whole.prefill_tokens)
    short, long = pre <= 256.0, pre > 256.0
    assert np.array_equal(prompts.time_s[:, short, :], whole.time_s[:, short, :])
    assert np.all(prompts.time_s[:, long, :] < whole.time_s[:, long, :])
    # the attention saved at the top of the grid: one causal kernel over 8192 tokens against 32 over 256
    j = int(np.argmax(pre))
    layers = float(r.model.num_layers)
    attention = {
        length: studies.device(r)
        .prefill_attention_time_s(8192.0 / length, 32.0, length, length, 128.0, causal=True)
        .time_s
        for length in (256.0, 8192.0)
    }
    saved = whole.time_s[0, j, 0] - prompts.time_s[0, j, 0]
    assert saved == pytest.approx(layers * (attention[8192.0] - attention[256.0]), rel=1e-9)


def _linear_table() -> IterationTable:
    """An iteration of 10 ms plus 0.1 ms per prefill token, whatever the decode batch and context (exact under the
    table's interpolation: the time is linear in the prefill tokens)."""
    decode, prefill, context = (0.0, 1.0, 2.0, 4.0), (0.0, 1000.0), (1.0, 1e4)
    time_s = np.array([[[0.01 + 1e-4 * p for _ in context] for p in prefill] for _ in decode])
    return IterationTable(decode, prefill, context, time_s)


@pytest.mark.parametrize(
    ("chunked", "gaps", "finish"), [(False, [0.04, 0.01, 0.01, 0.01], 0.08), (True, [0.03, 0.01, 0.01, 0.01], 0.07)]
)
def test_time_between_tokens_counts_every_gap_of_every_token(chunked, gaps, finish):
    """A (t=0, 100-token prompt, 4 tokens) and B (t=15 ms, 200, 2). A's prefill: 0-20 ms, A's first token at 20.
    Without chunking B's prefill runs alone, 20-50 ms, stalling A; then A and B decode (50-60: A's gap 40 ms, B's
    10), then A alone twice (10 ms each). With chunking B's prefill rides with A's decode (20-50: A's gap 30 ms).
    Every token gap counted once: p99 is the stall, which the per-request mean TPOT (A: 20 or 16.7 ms) hides."""
    reqs = Requests(np.array([0.0, 0.015]), np.array([100, 200], dtype=np.int64), np.array([4, 2], dtype=np.int64))
    config = SchedulerConfig(token_budget=512, chunked_prefill=chunked, max_running=8, kv_capacity_blocks=1000)
    sim = simulate(reqs, _linear_table(), config)
    np.testing.assert_allclose(sim.first_token_s, [0.02, 0.05], rtol=1e-12)
    np.testing.assert_allclose(sim.finish_s, [finish, 0.06], rtol=1e-12)
    np.testing.assert_allclose(np.repeat(sim.tbt_gap_s, sim.tbt_gap_count.astype(int)), gaps, rtol=1e-9)
    assert sim.tbt_gap_count.sum() == (4 - 1) + (2 - 1)  # one gap per token after each request's first
    assert sim.tbt_percentile_s(99.0) == pytest.approx(gaps[0], rel=1e-9)
    assert sim.tbt_percentile_s(50.0) == pytest.approx(0.01, rel=1e-9)
    assert float(np.nanmax(sim.tpot_s)) < gaps[0]


def test_multi_step_blocks_hold_arrivals_and_finished_requests_to_the_blocks_end():
    """Blocks of four decode iterations (vLLM's --num-scheduler-steps 4). A (t=0, 100-token prompt, 12 tokens)
    prefills 0-20 ms, then decodes a block 20-60; B (t=25 ms, 200, 3) waits out the block's three remaining
    iterations, prefills 60-90 (first token 90: 30 ms later than when scheduled every iteration), then A and B decode
    a block 90-130: B needs two tokens and decodes four, finishing at the block's end; A's last block, 130-170,
    holds its last three tokens. One gap per emitted token: A's 40 ms stall, the rest 10 ms."""
    reqs = Requests(np.array([0.0, 0.025]), np.array([100, 200], dtype=np.int64), np.array([12, 3], dtype=np.int64))
    base = SchedulerConfig(token_budget=512, chunked_prefill=False, max_running=8, kv_capacity_blocks=1000)
    sim = simulate(reqs, _linear_table(), dataclasses.replace(base, scheduler_steps=4))
    np.testing.assert_allclose(sim.first_token_s, [0.02, 0.09], rtol=1e-12)
    np.testing.assert_allclose(sim.finish_s, [0.17, 0.13], rtol=1e-12)
    assert sim.iterations == 1 + 4 + 1 + 4 + 4
    assert sim.tbt_gap_count.sum() == (12 - 1) + (3 - 1)
    np.testing.assert_allclose(np.sort(np.repeat(sim.tbt_gap_s, sim.tbt_gap_count.astype(int))), [0.01] * 12 + [0.04])
    every = simulate(reqs, _linear_table(), base)  # the scheduler every iteration: B prefills 30-60
    np.testing.assert_allclose(every.first_token_s, [0.02, 0.06], rtol=1e-12)
    slow = reference_simulate(reqs, _linear_table(), dataclasses.replace(base, scheduler_steps=4))
    np.testing.assert_allclose(slow.first_token_s, sim.first_token_s, rtol=1e-12)
    np.testing.assert_allclose(slow.finish_s, sim.finish_s, rtol=1e-12)


def test_first_tokens_reach_the_server_when_the_next_steps_model_call_returns():
    """vLLM 0.6.0's asynchronous output processing. A (t=0, 100-token prompt, 12 tokens) prefills 0-20 ms; B (t=5 ms,
    200, 3) waits and prefills 20-50: A's first token is seen at 50, when B's prefill returns. Then A and B decode:
    in blocks of four steps, B's first token is seen once the block's first step is launched (its host work before
    the model: 1 ms per step + 2 ms per block here), at 53; one step at a time, when that step ends, at 60. A
    finish inside a block is seen once the next step of the block is launched (its 1 ms of per-step host work): B's
    last token, the block's second step, ends at 70 and is seen at 71, A's, the third step of its third block, at
    161 (block end 170); one step at a time each is seen when its step ends (at 70 and 160), as without
    asynchronous output processing."""
    table = dataclasses.replace(_linear_table(), host=HostCost(fixed_s=1e-3, block_fixed_s=2e-3, decode_block_steps=4))
    reqs = Requests(np.array([0.0, 0.005]), np.array([100, 200], dtype=np.int64), np.array([12, 3], dtype=np.int64))
    base = SchedulerConfig(
        token_budget=512, chunked_prefill=False, max_running=8, kv_capacity_blocks=1000, first_token_with_next_step=True
    )
    cases = ((4, [0.05, 0.053], [0.161, 0.071], [0.17, 0.09]), (1, [0.05, 0.06], [0.16, 0.07], [0.16, 0.07]))
    for steps, first, finish, finish_without in cases:
        config = dataclasses.replace(base, scheduler_steps=steps)
        sim, slow = simulate(reqs, table, config), reference_simulate(reqs, table, config)
        plain = simulate(reqs, table, dataclasses.replace(config, first_token_with_next_step=False))
        np.testing.assert_allclose(sim.first_token_s, first, rtol=1e-12)
        np.testing.assert_allclose(slow.first_token_s, first, rtol=1e-12)
        np.testing.assert_allclose(plain.first_token_s, [0.02, 0.05], rtol=1e-12)
        np.testing.assert_allclose(sim.finish_s, finish, rtol=1e-12)
        np.testing.assert_allclose(slow.finish_s, finish, rtol=1e-12)
        np.testing.assert_allclose(plain.finish_s, finish_without, rtol=1e-12)


def test_a_blocks_launch_pays_its_per_block_host_work_in_full_and_one_steps():
    cost = HostCost(
        fixed_s=1e-3, per_sequence_s=2e-5, block_fixed_s=2e-3, block_per_sequence_s=1e-5, decode_block_steps=10
    )
    assert cost.launch_s(100.0) == pytest.approx(1e-3 + 2e-3 + 100 * (2e-5 + 1e-5), rel=1e-12)
    assert cost.launch_s(0.0) == 0.0


@pytest.mark.parametrize("steps", [1, 10])
def test_the_loops_agree_when_first_tokens_come_with_the_next_step(llama7b, steps):
    r, _, mem = llama7b
    cost = HostCost(fixed_s=5e-4, per_sequence_s=1e-5, block_fixed_s=1e-3, block_per_sequence_s=2e-5)
    table = iteration_time_table(**_table_arguments(r, max_prefill_tokens=4096), host=cost)
    config = dataclasses.replace(
        _config(mem.kv_capacity_blocks, chunked=False, steps=steps), first_token_with_next_step=True
    )
    reqs = studies.requests(r, 20.0, 400)
    fast, slow = simulate(reqs, table, config), reference_simulate(reqs, table, config)
    np.testing.assert_allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9)
    later = (
        fast.first_token_s
        - simulate(reqs, table, dataclasses.replace(config, first_token_with_next_step=False)).first_token_s
    )
    assert (later >= 0).all() and (later > 0).any()


def test_multi_step_blocks_take_their_kv_slots_up_front_and_emit_one_gap_per_token(llama7b):
    """Under load with a tight cache: every block's KV slots fit when it starts (preempting otherwise), decode
    steps run whole blocks, and the iterations after a request's last token emit no gaps."""
    _, table, _ = llama7b
    reqs = _fixed(300, 50.0, prompt=500, output=700)
    sim = simulate(reqs, table, _config(64 * 20, chunked=False, steps=10))
    assert sim.preemptions > 0 and np.isfinite(sim.finish_s).all()
    assert float(sim.step_kv_blocks.max()) <= 64 * 20
    decoding = sim.step_decode_batch > 0
    assert (sim.step_iterations[decoding] % 10 == 0).all()
    assert sim.tbt_gap_count.sum() == float((sim.output_tokens - 1).sum())
    assert (sim.tbt_gap_count >= 0).all()


def test_multi_step_needs_one_token_per_iteration(llama7b):
    _, table, mem = llama7b
    config = dataclasses.replace(_config(mem.kv_capacity_blocks, chunked=False, steps=4), tokens_per_step=2.0)
    with pytest.raises(ValueError, match="multi-step"):
        simulate(_fixed(10, 5.0), table, config)


def test_weighted_percentile_is_the_inverted_cdf():
    from dse.engines.serving import weighted_percentile

    values, counts = np.array([3.0, 1.0, 2.0]), np.array([1.0, 6.0, 3.0])  # ten tokens: six 1s, three 2s, one 3
    assert weighted_percentile(values, counts, 60.0) == 1.0
    assert weighted_percentile(values, counts, 61.0) == 2.0
    assert weighted_percentile(values, counts, 90.0) == 2.0
    assert weighted_percentile(values, counts, 99.0) == 3.0
    assert np.isnan(weighted_percentile(values, np.zeros(3), 50.0))


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_every_output_token_after_the_first_has_one_gap(llama7b, gain):
    """Under load, a tight cache (preemptions, recompute) and speculative steps: one gap per token after each
    request's first (a last speculative step's tokens beyond the output are not emitted), none negative."""
    _, table, _ = llama7b
    reqs = _fixed(300, 50.0, prompt=500, output=700)
    config = dataclasses.replace(_config(64 * 20), tokens_per_step=gain)
    sim = simulate(reqs, table, config)
    assert sim.preemptions > 0
    assert sim.tbt_gap_count.sum() == float((sim.output_tokens - 1).sum())
    assert (sim.tbt_gap_s >= -1e-12).all()
    assert sim.tbt_percentile_s(99.0) > 0.0
    # the extra tokens a speculative step accepts come with no gap: 1 - 1/gain of them (1.5 of every 2.5)
    zero_share = float(sim.tbt_gap_count[sim.tbt_gap_s == 0.0].sum() / sim.tbt_gap_count.sum())
    assert zero_share == pytest.approx(1.0 - 1.0 / gain, abs=0.01)


def test_a_decode_pools_first_gap_counts_from_the_prefill_instances_first_token():
    """Disaggregated: the KV cache arrives at 50 ms, the first token came out of the prefill instance at 20 ms; the
    second token (one 10 ms decode iteration) is 40 ms after the first, transfer included."""
    reqs = Requests(
        np.array([0.05]), np.array([100], dtype=np.int64), np.array([2], dtype=np.int64), first_token_s=np.array([0.02])
    )
    config = SchedulerConfig(
        token_budget=512, chunked_prefill=True, max_running=8, kv_capacity_blocks=1000, decode_only=True
    )
    sim = simulate(reqs, _linear_table(), config)
    np.testing.assert_allclose(sim.finish_s, [0.06], rtol=1e-12)
    np.testing.assert_allclose(sim.tbt_gap_s, [0.04], rtol=1e-9)
    assert sim.tbt_gap_count.tolist() == [1.0]


def test_with_data_parallel_attention_each_ranks_scheduler_counts_its_share():
    table = IterationTable(
        decode_batch=(0.0, 8.0),
        prefill_tokens=(0.0, 1.0),
        context_tokens=(1.0, 2.0),
        time_s=np.zeros((2, 2, 2)),
        host=HOST,
        host_ranks=4.0,
    )
    assert table.host_time_s(np.array(64.0), np.array(0.0)) == pytest.approx(1e-3 + 16 * 2e-5, rel=1e-12)
