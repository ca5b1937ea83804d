"""The serving kind: its examples evaluate, a sweep over the arrival rate works, inputs are checked."""

from __future__ import annotations

import math

import pytest

from dse.catalog import default_catalog
from dse.scenarios.base import InputError
from dse.scenarios.documents import parse_document
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs
from dse.scenarios.registry import KINDS
from dse.scenarios.sweep import SweepAxis, run_sweep

KIND = KINDS["serving"]
SMALL = {"model": "llama2-7b", "accelerator": "a100-80gb", "num_requests": 300, "rate_search_steps": 2}


def _evaluate(inputs: dict):
    return KIND.evaluate(KIND.resolve(ServingInputs.model_validate(inputs), default_catalog()))


def test_the_first_example_asks_the_home_page_question():
    first = KIND.examples()[0]
    assert first["name"].startswith("How many H100s serve 50 req/s of Llama-3 70B")
    parse_document(first)


def test_a_small_scenario_evaluates_with_charts_and_the_search_table():
    result = _evaluate({**SMALL, "arrival_rate_per_s": 3.0})
    values = {m.key: m.value for m in result.metrics}
    assert set(values) == set(KIND.metric_specs)
    assert values["requests_per_s"] == pytest.approx(3.0, rel=0.3)
    assert values["max_rate_meeting_slo_per_s"] > 0
    assert values["fewest_replicas"] >= 1
    assert values["usd_per_million_output_tokens"] > 0 and values["joules_per_output_token"] > 0
    assert {c.key for c in result.charts} == {
        "ttft_cdf",
        "tpot_cdf",
        "percentiles_vs_rate",
        "batch_timeline",
        "queue_kv_timeline",
    }
    assert result.tables[0].rows
    for chart in result.charts:
        layout = chart.figure["layout"]
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]


def test_a_sweep_over_the_arrival_rate_runs_and_latency_grows_with_it():
    inputs = ServingInputs.model_validate({**SMALL, "rate_search_steps": 2})
    out = run_sweep(KIND, inputs, default_catalog(), [SweepAxis(path="arrival_rate_per_s", values=[1.0, 30.0])])
    assert out.shape == [2]
    ttft = out.metrics["ttft_p99_s"]
    assert all(v is not None and math.isfinite(v) for v in ttft)
    assert ttft[1] > ttft[0]


def test_too_large_a_sweep_is_refused():
    inputs = ServingInputs.model_validate(SMALL)
    with pytest.raises(InputError):
        run_sweep(
            KIND,
            inputs,
            default_catalog(),
            [SweepAxis(path="arrival_rate_per_s", values=[float(v) for v in range(1, 40)])],
        )


def test_a_trace_needs_rows_and_tp_must_divide_the_heads():
    with pytest.raises(InputError, match="trace"):
        KIND.resolve(ServingInputs(arrival_process="trace"), default_catalog())
    with pytest.raises(InputError, match="tensor_parallel"):
        KIND.resolve(ServingInputs(model="llama2-7b", tensor_parallel=3), default_catalog())


def test_a_trace_is_read_only_under_trace_arrivals():
    """Hypothesis found it: an empty trace beside Poisson arrivals reached the engine (max() of no rows, a 500)."""
    for trace in ([], [[0.0, 128, 32], [1.0, 4096, 32]]):
        resolved = KIND.resolve(ServingInputs(arrival_process="poisson", trace=trace), default_catalog())
        assert resolved.trace is None
    assert KIND.evaluate(KIND.resolve(ServingInputs.model_validate({**SMALL, "trace": []}), default_catalog()))


def test_more_replicas_lower_latency_at_the_same_rate():
    one = {m.key: m.value for m in _evaluate({**SMALL, "arrival_rate_per_s": 20.0}).metrics}
    two = {m.key: m.value for m in _evaluate({**SMALL, "arrival_rate_per_s": 20.0, "replicas": 2}).metrics}
    assert two["ttft_p99_s"] <= one["ttft_p99_s"]
    assert two["max_rate_meeting_slo_per_s"] == pytest.approx(2 * one["max_rate_meeting_slo_per_s"], rel=0.35)


@pytest.mark.parametrize(
    ("model", "accelerator", "tp"),
    [("mixtral-8x7b", "h100-sxm", 2), ("deepseek-v3", "h200-sxm", 8), ("qwen3-235b-a22b", "h200-sxm", 4)],
)
def test_moe_and_latent_attention_models_are_served(model, accelerator, tp):
    """MoE and MLA models are priced by the inference per-op model (every expert stored, the experts the tokens
    touch read); they evaluate with every metric finite."""
    inputs = {**SMALL, "model": model, "accelerator": accelerator, "tensor_parallel": tp, "weight_dtype": "fp8"}
    resolved = KIND.resolve(ServingInputs.model_validate(inputs), default_catalog())
    values = {m.key: m.value for m in KIND.evaluate(resolved).metrics}
    assert values["tpot_p50_s"] > 0 and values["kv_cache_tokens_per_replica"] > 0
    llm = resolved.model
    assert values["weights_bytes_per_device"] == pytest.approx(llm.published_params_count / tp, rel=0.02)  # all experts


SPEC = {**SMALL, "model": "llama2-70b", "tensor_parallel": 4, "arrival_rate_per_s": 0.5}


def test_speculative_decoding_cuts_tpot_at_light_load_when_drafts_are_accepted():
    plain = {m.key: m.value for m in _evaluate(SPEC).metrics}
    rejected = {m.key: m.value for m in _evaluate({**SPEC, "draft_model": "llama2-7b", "acceptance_rate": 0.0}).metrics}
    accepted = {m.key: m.value for m in _evaluate({**SPEC, "draft_model": "llama2-7b", "acceptance_rate": 0.8}).metrics}
    assert rejected["speculative_tokens_per_step"] == 1.0 and plain["speculative_tokens_per_step"] == 1.0
    assert accepted["speculative_tokens_per_step"] == pytest.approx((1 - 0.8**5) / 0.2, rel=1e-12)
    assert rejected["tpot_p50_s"] > plain["tpot_p50_s"]  # the draft's steps and a wider verification, for nothing
    assert accepted["tpot_p50_s"] < 0.75 * plain["tpot_p50_s"]
    assert accepted["kv_cache_tokens_per_replica"] < plain["kv_cache_tokens_per_replica"]  # the draft's share


def test_a_draft_of_another_vocabulary_is_refused():
    with pytest.raises(InputError) as refused:
        KIND.resolve(ServingInputs(**{**SPEC, "draft_model": "llama3-8b"}), default_catalog())
    assert refused.value.field == "draft_model"


DISAGG = {
    **SMALL,
    "model": "llama2-13b",
    "arrival_rate_per_s": 4.0,
    "disaggregated": True,
    "prefill_replicas": 1,
    "decode_replicas": 3,
    "request_lengths": None,
    "prompt_tokens": 1024,
    "output_tokens": 128,
}


def test_disaggregated_serving_is_compared_with_colocated_on_the_same_devices():
    result = _evaluate(DISAGG)
    values = {m.key: m.value for m in result.metrics}
    assert values["devices"] == 4
    assert values["requests_per_s"] == pytest.approx(4.0, rel=0.3)
    assert values["colocated_max_rate_meeting_slo_per_s"] > 0
    assert values["disaggregation_gain"] == pytest.approx(
        values["max_rate_meeting_slo_per_s"] / values["colocated_max_rate_meeting_slo_per_s"], rel=1e-12
    )
    table = next(t for t in result.tables if t.key == "disaggregation")
    assert [row[1] for row in table.rows] == [4, 4]
    assert "disaggregated_vs_colocated" in {c.key for c in result.charts}


def test_the_kv_transfer_is_the_prompts_cache_over_the_link():
    """latency + prompt * KV bytes per token / (bandwidth * min(TP_prefill, TP_decode)): Llama-2 13B in fp16 holds
    2 * 40 layers * 5120 * 2 bytes per token; one HDR port is 25 GB/s per direction (models_db/interconnects)."""
    values = {m.key: m.value for m in _evaluate(DISAGG).metrics}
    link = default_catalog().get("interconnects", "ib-hdr")
    expected = link.latency_s + 1024 * (2 * 40 * 5120 * 2) / link.bandwidth_per_direction_bytes_per_s
    assert values["kv_transfer_p50_s"] == pytest.approx(expected, rel=1e-12)


def test_disaggregated_pools_must_fill_whole_colocated_replicas():
    with pytest.raises(InputError) as refused:
        KIND.resolve(ServingInputs(**{**DISAGG, "tensor_parallel": 8}), default_catalog())
    assert refused.value.field == "tensor_parallel"


def test_token_level_tbt_shows_the_prefill_stalls_that_chunking_removes():
    """Sarathi-Serve's point (Agrawal et al., OSDI'24): without chunking a prefill iteration stalls every decode,
    which the p99 of every token gap shows and the per-request mean TPOT averages away."""
    chunked = {m.key: m.value for m in _evaluate({**SMALL, "arrival_rate_per_s": 3.0}).metrics}
    whole = {m.key: m.value for m in _evaluate({**SMALL, "arrival_rate_per_s": 3.0, "chunked_prefill": False}).metrics}
    for values in (chunked, whole):
        assert values["tbt_p50_s"] <= values["tbt_p90_s"] <= values["tbt_p99_s"]
        assert values["tbt_p99_s"] > values["tpot_p99_s"]
    assert whole["tbt_p99_s"] > 1.3 * chunked["tbt_p99_s"]
    assert whole["tpot_p99_s"] < 1.1 * chunked["tpot_p99_s"]


#: (model, accelerator, dtype, TP, batch, prompt, output): a dense model prefill-light and decode-heavy, a dense
#: model on fp8 at TP4, a MoE model with long prompts.
SATURATED_BATCHES = [
    ("llama2-7b", "a100-80gb", "fp16", 1, 32, 512, 256),
    ("llama2-70b", "h100-sxm", "fp8", 4, 64, 128, 2048),
    ("mixtral-8x7b", "a100-80gb", "fp16", 2, 64, 2048, 128),
]


@pytest.mark.parametrize(("model", "accelerator", "dtype", "tp", "batch", "prompt", "output"), SATURATED_BATCHES)
def test_saturated_server_runs_at_the_fixed_batch_inference_kinds_throughput(
    model, accelerator, dtype, tp, batch, prompt, output
):
    """The saturation point matches the fixed-batch inference kind: B requests arriving at once, at most B running,
    one prefill iteration then decode iterations, give the inference kind's end-to-end throughput at batch B.
    What separates the two is under 1% of the makespan: the first request's prompt runs alone in the first
    iteration (it arrives a few us before the rest), and the serving table interpolates decode steps over a grid
    of contexts where the inference kind prices each step. Both sides run the one stack named here (the serving
    helper's stack defaults to tensorrt-llm-0.9, whose fp16 attention, unfused SwiGLU and pre-DeepGEMM fp8 GEMMs
    price the fp8 case slower than the tensorrt-llm stack)."""
    from dse.scenarios.kinds.inference.inputs import InferenceInputs
    from dse.scenarios.kinds.inference.studies import run as run_inference_kind
    from dse.scenarios.kinds.serving.published import (
        NVLINK_GB_PER_S,
        TRTLLM_V090_STACK,
        static_batch_tokens_per_s_per_gpu,
    )

    catalog = default_catalog()
    fixed = KINDS["inference"].resolve(
        InferenceInputs.model_validate(
            dict(
                model=model,
                system="gpu_only",
                accelerator=accelerator,
                comparison_gpu=accelerator,
                memory=None,
                batch_size=batch,
                prompt_tokens=prompt,
                output_tokens=output,
                tensor_parallel=tp,
                weight_dtype=dtype,
                activation_dtype=dtype,
                kv_cache_dtype=dtype,
                software_stack=TRTLLM_V090_STACK,
                link_bandwidth_gb_per_s=NVLINK_GB_PER_S[accelerator],
            )
        ),
        catalog,
    )
    fixed_batch = float(run_inference_kind(fixed).end_to_end_throughput_tokens_per_s) / tp
    served = static_batch_tokens_per_s_per_gpu(
        catalog,
        model=model,
        accelerator=accelerator,
        dtype=dtype,
        tp=tp,
        batch=batch,
        prompt=prompt,
        output=output,
        stack=TRTLLM_V090_STACK,
    )
    assert served == pytest.approx(fixed_batch, rel=0.01)


#: (model, TP, most running B, prompt, output, chunked prefill): every B requests' contexts fit the A100's cache.
POISSON_SATURATED = [
    ("llama2-7b", 1, 32, 256, 512, True),
    ("llama2-7b", 1, 32, 256, 512, False),
    ("llama2-13b", 1, 32, 1024, 256, True),
    ("llama2-70b", 4, 64, 512, 512, True),
]


@pytest.mark.parametrize(("model", "tp", "batch", "prompt", "output", "chunked"), POISSON_SATURATED)
def test_a_poisson_stream_past_saturation_is_served_at_the_fixed_batch_throughput(
    model, tp, batch, prompt, output, chunked
):
    """The saturation point under load: a Poisson stream at twice the rate the fixed-batch inference kind sustains
    at batch B (its end-to-end throughput over the output length) builds a queue, keeps B requests running, and is
    served at that throughput. Continuous batching staggers the requests' contexts around the same mean and
    interleaves the prompts with the decodes; the static batch runs them in step. The run's ramp-up and drain (one
    batch of 2000 requests) keep the two within 3%."""
    from dse.scenarios.kinds.inference.inputs import InferenceInputs
    from dse.scenarios.kinds.inference.studies import run as run_inference_kind
    from dse.scenarios.kinds.serving import studies

    catalog = default_catalog()
    common = dict(model=model, accelerator="a100-80gb", tensor_parallel=tp, software_stack="vllm-cuda-graphs")
    common |= dict(link_bandwidth_gb_per_s=300.0, prompt_tokens=prompt, output_tokens=output)
    fixed = KINDS["inference"].resolve(
        InferenceInputs.model_validate(
            dict(**common, system="gpu_only", comparison_gpu="a100-80gb", memory=None, batch_size=batch)
        ),
        catalog,
    )
    fixed_batch = float(run_inference_kind(fixed).end_to_end_throughput_tokens_per_s)
    rate, count = 2.0 * fixed_batch / output, 2000
    served = KIND.resolve(
        ServingInputs.model_validate(
            dict(
                **common,
                request_lengths=None,
                max_running=batch,
                num_requests=count,
                arrival_rate_per_s=rate,
                chunked_prefill=chunked,
                token_budget=2048 if chunked else batch * prompt,
            )
        ),
        catalog,
    )
    pools = studies.pools(served)
    assert batch * (prompt + output) <= pools.memory.kv_capacity_blocks * 16  # B requests fit: no preemption
    sim = studies.serve(served, pools, rate, count).sim
    assert sim.preemptions == 0 and sim.step_queue.max() > batch  # saturated: a queue beyond the running batch
    assert float(sim.output_tokens.sum()) / sim.makespan_s == pytest.approx(fixed_batch, rel=0.03)


def test_expert_parallel_reaches_the_serving_iterations_and_impossible_values_name_the_field() -> None:
    from dse.scenarios.kinds.serving.studies import deployment

    base = {"model": "mixtral-8x7b", "accelerator": "h100-sxm", "tensor_parallel": 2}
    catalog = default_catalog()
    resolved = KIND.resolve(KIND.inputs_model.model_validate({**base, "expert_parallel": 2}), catalog)
    assert (deployment(resolved).expert_parallel, deployment(resolved).expert_load_imbalance) == (2.0, 1.0)
    for bad in (
        {"expert_parallel": 4},
        {"model": "llama2-7b", "expert_parallel": 2},
        {"tensor_parallel": 4, "expert_parallel": 3},
    ):
        with pytest.raises(InputError) as info:
            KIND.resolve(KIND.inputs_model.model_validate({**base, **bad}), catalog)
        assert info.value.field == "expert_parallel"


def test_the_deepseek_question_counts_replicas_of_dp_attention_gpus() -> None:
    """How many H100s for 1,000 requests/s of DeepSeek-V3: replicas of 32 GPUs (DP attention 32 x TP 1, EP 32),
    the fewest replicas the rate needs at the largest rate one replica meets the SLOs at, times 32 (exact)."""
    from dse.scenarios.kinds.serving import studies

    doc = next(e for e in KIND.examples() if e["name"].startswith("How many H100s does DeepSeek-V3 need"))
    parse_document(doc)
    resolved = KIND.resolve(ServingInputs.model_validate(doc["inputs"]), default_catalog())
    assert studies.replica_devices(resolved) == 32.0 and studies.devices(resolved) == 9 * 32.0
    result = KIND.evaluate(resolved)
    metrics = {m.key: m.value for m in result.metrics}
    per_replica = metrics["max_rate_meeting_slo_per_s"] / 9
    assert metrics["fewest_replicas"] == math.ceil(1000.0 / per_replica - 1e-9)
    assert metrics["fewest_devices"] == 32 * metrics["fewest_replicas"]
    assert metrics["devices"] == 288.0 and metrics["meets_slo"]


def test_data_parallel_attention_holds_each_ranks_cache_and_impossible_layouts_name_the_field() -> None:
    from dse.engines.inference import model_shape, routed_expert_parameters
    from dse.scenarios.kinds.serving import studies

    catalog = default_catalog()
    base = {"model": "deepseek-v3", "accelerator": "h100-sxm", "weight_dtype": "fp8", "activation_dtype": "fp8"}
    one = KIND.resolve(ServingInputs.model_validate({**base, "tensor_parallel": 8, "expert_parallel": 8}), catalog)
    spread = KIND.resolve(
        ServingInputs.model_validate({**base, "attention_data_parallel": 16, "expert_parallel": 16}), catalog
    )
    shape = model_shape(spread.model)
    total, routed = float(shape.parameters().total), float(routed_expert_parameters(shape))
    memory = studies.memory(spread)
    assert memory.weights_bytes_per_device == pytest.approx(total - routed + routed / 16.0, rel=1e-12)
    free = spread.accelerator.memory_capacity_bytes * spread.gpu_memory_utilization - memory.weights_bytes_per_device
    assert memory.kv_capacity_blocks == 16 * (int(free // memory.kv_bytes_per_token_per_device) // 16)
    assert studies.deployment(spread).expert_exchange is not None and studies.deployment(one).expert_exchange is None
    for bad, field in (
        ({"model": "llama3-70b", "attention_data_parallel": 4, "expert_parallel": 4}, "attention_data_parallel"),
        ({"attention_data_parallel": 4, "expert_parallel": 2}, "expert_parallel"),
        ({"attention_data_parallel": 4, "expert_parallel": 4, "disaggregated": True}, "attention_data_parallel"),
    ):
        with pytest.raises(InputError) as info:
            KIND.resolve(ServingInputs.model_validate({**base, **bad}), catalog)
        assert info.value.field == field


def test_the_no_evict_admission_policy_never_preempts_and_holds_fewer_requests():
    """TensorRT-LLM's GUARANTEED_NO_EVICT through the document: a cache that holds 15 prompts of 1024 tokens but
    not their outputs preempts under the default policy and never under no-evict."""
    tight = {
        **SMALL,
        "request_lengths": None,
        "prompt_tokens": 1024,
        "output_tokens": 1024,
        "arrival_rate_per_s": 50.0,
        "gpu_memory_utilization": 0.255,  # 20.4 GB: 13.5 GB of fp16 weights and 16,064 tokens of KV cache
    }
    default = {m.key: m.value for m in _evaluate(tight).metrics}
    no_evict = {m.key: m.value for m in _evaluate({**tight, "admission_policy": "guaranteed_no_evict"}).metrics}
    assert ServingInputs.model_validate(SMALL).admission_policy == "max_utilization"
    assert default["preemptions"] > 0 and no_evict["preemptions"] == 0
    assert no_evict["peak_kv_cache_use"] <= 1.0
    with pytest.raises(ValueError, match="admission_policy"):
        ServingInputs.model_validate({**SMALL, "admission_policy": "evict_sometimes"})


def test_whole_prompts_beside_the_decodes_reach_the_scheduler_only_without_chunking():
    joined = KIND.resolve(
        ServingInputs.model_validate({**SMALL, "chunked_prefill": False, "prompts_join_decodes": True}),
        default_catalog(),
    )
    assert studies.scheduler(joined, 100).prompts_join_decodes
    assert not studies.scheduler(
        KIND.resolve(ServingInputs.model_validate(SMALL), default_catalog()), 100
    ).prompts_join_decodes


def test_multi_step_blocks_reach_the_scheduler_only_where_they_apply():
    """scheduler_steps reaches the engine for vLLM's unchunked co-located scheduler without a draft; elsewhere its
    `x-applies-when` holds it at one step per scheduler call, and the form reads the same conditions."""
    catalog = default_catalog()
    unchunked = {**SMALL, "chunked_prefill": False, "scheduler_steps": 10}

    def steps(inputs: dict) -> int:
        return studies.scheduler(KIND.resolve(ServingInputs.model_validate(inputs), catalog), 100).scheduler_steps

    assert steps(SMALL) == 1 and steps(unchunked) == 10
    assert steps({**unchunked, "chunked_prefill": True}) == 1
    assert steps({**unchunked, "prompts_join_decodes": True}) == 1
    assert steps({**unchunked, "draft_model": "llama2-7b", "model": "llama2-13b"}) == 1
    rule = ServingInputs.model_json_schema()["properties"]["scheduler_steps"]["x-applies-when"]["when"]
    assert rule == {
        "chunked_prefill": [False],
        "prompts_join_decodes": [False],
        "draft_model": [None],
        "disaggregated": [False],
    }
    with pytest.raises(ValueError, match="scheduler_steps"):
        ServingInputs.model_validate({**SMALL, "scheduler_steps": 0})


def test_multi_step_blocks_delay_the_first_token_under_load():
    """Through the document: new prompts wait for the decode block under way, so the median time to first token
    grows with the block (ten steps against one)."""
    base = {**SMALL, "chunked_prefill": False, "arrival_rate_per_s": 4.0}
    one = {m.key: m.value for m in _evaluate(base).metrics}
    ten = {m.key: m.value for m in _evaluate({**base, "scheduler_steps": 10}).metrics}
    assert ten["ttft_p50_s"] > one["ttft_p50_s"]


def test_a_stack_with_host_work_shows_its_share_and_the_default_stack_has_none():
    """vllm-cuda-graphs prices the kernels alone (host share 0); vLLM 0.5 (synchronous step) adds the vidur
    host fit's four components, vLLM 0.6.0 drops the output processing it overlaps, so it sits in between."""
    values = {}
    for stack in ("vllm-cuda-graphs", "vllm-0.6.0", "vllm-0.5"):
        result = _evaluate({**SMALL, "arrival_rate_per_s": 3.0, "software_stack": stack})
        values[stack] = {m.key: m.value for m in result.metrics}
    assert values["vllm-cuda-graphs"]["host_time_share"] == 0.0
    assert 0.0 < values["vllm-0.6.0"]["host_time_share"] < values["vllm-0.5"]["host_time_share"] < 0.5
    tpot = [values[s]["tpot_p50_s"] for s in ("vllm-cuda-graphs", "vllm-0.6.0", "vllm-0.5")]
    assert tpot[0] < tpot[1] < tpot[2]


def test_the_host_cost_is_the_sum_of_the_stacks_critical_path_fits():
    """host_cost adds each critical-path component's fitted terms; per-block components divide by the steps."""
    from dse.catalog.calibration import host_cost, load_host_fits

    catalog = default_catalog()
    fits = load_host_fits(catalog.root)
    c = fits["vidur-sarathi"].components
    stacks = {s: catalog.get("stacks", s) for s in ("vllm-0.6.0", "vllm-0.5", "vllm-cuda-graphs", "tensorrt-llm")}
    vocab, tp = 128256.0, 4.0

    def part(name: str) -> tuple[float, float]:
        k = c[name]
        fixed = k.get("fixed", 0.0) + k.get("tensor_parallel", 0.0) + k.get("per_vocab_entry", 0.0) * vocab
        return fixed, k.get("per_sequence", 0.0) + k.get("per_sequence_vocab_entry", 0.0) * vocab

    sync = host_cost(fits, stacks["vllm-0.5"], vocab_size=vocab, tensor_parallel=tp)
    parts = [part(n) for n in ("schedule", "prepare_inputs", "sampler", "process_outputs")]
    assert sync.fixed_s == pytest.approx(sum(f for f, _ in parts), rel=1e-12)
    assert sync.per_sequence_s == pytest.approx(sum(b for _, b in parts), rel=1e-12)
    blocked = host_cost(fits, stacks["vllm-0.6.0"], vocab_size=vocab, tensor_parallel=tp, scheduler_steps=10.0)
    per_block = [part(n) for n in ("schedule", "prepare_inputs")]
    assert (blocked.fixed_s, blocked.per_sequence_s) == part("sampler")
    assert blocked.block_fixed_s == pytest.approx(sum(f for f, _ in per_block), rel=1e-12)
    assert blocked.block_per_sequence_s == pytest.approx(sum(b for _, b in per_block), rel=1e-12)
    assert blocked.decode_block_steps == 10.0
    for stack in ("vllm-cuda-graphs", "tensorrt-llm"):
        none = host_cost(fits, stacks[stack], vocab_size=vocab, tensor_parallel=tp)
        assert (none.fixed_s, none.per_sequence_s) == (0.0, 0.0)


def test_only_vllm_060s_stack_delivers_a_first_token_with_the_next_step():
    """Asynchronous output processing is a property of the stack: vLLM 0.6.0's scheduler config turns it on, the
    synchronous stacks keep the first token at its prefill's end."""
    from dse.scenarios.kinds.serving.inputs import resolve

    catalog = default_catalog()
    flags = {
        stack: studies.scheduler(resolve(ServingInputs(**{**SMALL, "software_stack": stack}), catalog), 1000)
        for stack in ("vllm-0.6.0", "vllm-0.5", "vllm-cuda-graphs", "sglang-0.3.0")
    }
    assert {s: c.first_token_with_next_step for s, c in flags.items()} == {
        "vllm-0.6.0": True,
        "vllm-0.5": False,
        "vllm-cuda-graphs": False,
        "sglang-0.3.0": False,
    }


def test_sarathi_serves_stack_runs_every_profiled_host_component_every_step():
    """vidur adds schedule, sampler, inputs, outputs and Ray communication to every batch of the engine it profiles."""
    from dse.catalog.calibration import host_cost, load_host_fits

    catalog = default_catalog()
    fits = load_host_fits(catalog.root)
    components = fits["vidur-sarathi"].components.values()
    cost = host_cost(fits, catalog.get("stacks", "sarathi-serve"), vocab_size=64000.0, tensor_parallel=2.0)
    fixed = sum(
        k.get("fixed", 0.0) + k.get("tensor_parallel", 0.0) + k.get("per_vocab_entry", 0.0) * 64000.0
        for k in components
    )
    per_sequence = sum(
        k.get("per_sequence", 0.0) + k.get("per_sequence_vocab_entry", 0.0) * 64000.0 for k in components
    )
    assert cost.fixed_s == pytest.approx(fixed, rel=1e-12)
    assert cost.per_sequence_s == pytest.approx(per_sequence, rel=1e-12)
    assert (cost.block_fixed_s, cost.block_per_sequence_s) == (0.0, 0.0)


@pytest.mark.parametrize("accelerator", ["h100-sxm", "a100-80gb"])
def test_mixtral_routing_miss_quotes_the_engines_current_prefill_and_step(accelerator: str) -> None:
    """The Mixtral 2048/2048 rows' miss reason quotes the engine's prefill (s) and decode step (ms) of that static
    batch: they must be the simulation's current figures, to the digit quoted."""
    from dse.scenarios.kinds.serving.published import (
        _MIXTRAL_ROUTING_FIGURES,
        TRTLLM_V090_MIXTRAL,
        static_batch_simulation,
    )

    (row,) = [r for r in TRTLLM_V090_MIXTRAL if r[0] == accelerator and r[4:6] == (2048, 2048)]
    _, dtype, tp, batch, prompt, output, _ = row
    sim = static_batch_simulation(
        default_catalog(),
        model="mixtral-8x7b",
        accelerator=accelerator,
        dtype=dtype,
        tp=tp,
        batch=batch,
        prompt=prompt,
        output=output,
    )
    # Every output token after the first comes from a decode step (the first one from the prefill).
    step_ms = (sim.makespan_s - sim.prefill_busy_s) / (output - 1) * 1e3
    quoted = _MIXTRAL_ROUTING_FIGURES[accelerator]
    assert f"{sim.prefill_busy_s:.1f}" == quoted["prefill_s"]
    assert f"{step_ms:.1f}" == quoted["engine_step_ms"]
