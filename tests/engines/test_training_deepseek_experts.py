"""DeepSeek-V3's training mechanisms on MoE plans (arXiv:2412.19437): the router's element-wise kernels, the
recomputation of the norms and MLA up-projections (Section 3.2.3) and the multi-token-prediction module
(Section 2.2) as one more layer, a projection and another head pass on the last stage."""

from __future__ import annotations

import dataclasses

import pytest

from dse.catalog import default_catalog
from dse.engines.training import ModelArrays, PlanArrays, evaluate_plans
from dse.engines.training.compute import layer_gemms
from dse.engines.training.experts import (
    ROUTER_BYTES_PER_CHOICE,
    ROUTER_BYTES_PER_SCORE,
    attention_shapes,
    ffn_times,
)
from dse.scenarios.kinds.training.published_moe import _cluster

CATALOG = default_catalog()


def deepseek():
    return ModelArrays.from_llm(CATALOG.get("llms", "deepseek-v3"))


def plan(**changes):
    base = PlanArrays(
        global_batch_size=256.0,
        micro_batch_size=1.0,
        sequence_length=4096.0,
        data_parallel=64.0,
        tensor_parallel=1.0,
        pipeline_parallel=4.0,
        flash_attention=1.0,
        expert_parallel=64.0,
        first_stage_layers=16.0,
        last_stage_layers=13.0,
    )
    return dataclasses.replace(base, **changes)


def evaluate(model=None, **changes):
    cluster = _cluster(CATALOG, 32, "h800-sxm", "nvlink4-h800", "fp8")
    return evaluate_plans(model=model or deepseek(), cluster=cluster, plan=plan(**changes))


def shapes(m, s=4096.0):
    g = layer_gemms(
        sequence_length=s,
        micro_batch_size=1.0,
        hidden_size=m.hidden_size,
        num_heads=m.num_heads,
        num_kv_heads=m.num_kv_heads,
        ffn_hidden_size=m.ffn_hidden_size,
        gated_ffn=m.gated_ffn,
        tensor_parallel=1.0,
        context=1.0,
    )
    return g, attention_shapes(g=g, model=m, b=1.0, s=s, t=1.0, n=1.0)


def test_router_bytes_are_its_scores_and_choices_over_the_moe_share():
    m = deepseek()
    g, _ = shapes(m)
    device = _cluster(CATALOG, 32, "h800-sxm", "nvlink4-h800", "fp8").device
    ffn = ffn_times(
        device=device, model=m, b=1.0, s=4096.0, t=1.0, n=1.0, expert_parallel=64.0, load=1.0,
        dense_ffn=(g.ffn_in, g.ffn_out),
    )  # fmt: skip
    expected = 58.0 / 61.0 * 4096.0 * (ROUTER_BYTES_PER_SCORE * 256.0 + ROUTER_BYTES_PER_CHOICE * 8.0)
    assert float(ffn.router_bytes) == pytest.approx(expected, rel=1e-12)


def test_mla_up_projections_are_the_query_and_kv_up_gemms_and_the_norms_cover_the_latents():
    _, a = shapes(deepseek())
    (q_up, kv_up) = a.up_projections
    assert (float(q_up.m), float(q_up.n), float(q_up.k)) == (4096.0, 128.0 * 192.0, 1536.0)
    assert (float(kv_up.m), float(kv_up.n), float(kv_up.k)) == (4096.0, 128.0 * 256.0, 512.0)
    assert float(a.latent_norm_width) == 1536.0 + 512.0
    _, gqa = shapes(ModelArrays.from_llm(CATALOG.get("llms", "qwen3-235b-a22b")))
    assert gqa.up_projections == [] and float(gqa.latent_norm_width) == 0.0


def test_recomputing_norms_and_up_projections_adds_their_forward_flop_to_the_recomputation_only():
    base, redo = evaluate(), evaluate(recompute_norms_and_up_projections=1.0)
    _, a = shapes(deepseek())
    up_flop = sum(2.0 * float(w.m * w.n * w.k) for w in a.up_projections)
    added = float(redo.executed_flop_per_iteration - base.executed_flop_per_iteration)
    assert added == pytest.approx(256.0 * 61.0 * up_flop, rel=1e-9)  # every micro-batch of 4096 tokens, every layer
    assert float(redo.time_recompute_s) > float(base.time_recompute_s)
    for key in ("time_forward_s", "time_backward_s", "model_flop_per_iteration"):
        assert float(getattr(redo, key)) == float(getattr(base, key))
    # full recomputation redoes the whole layer: the flag adds nothing on top of it
    full, full_redo = evaluate(recompute=2.0), evaluate(recompute=2.0, recompute_norms_and_up_projections=1.0)
    assert float(full_redo.iteration_time_s) == float(full.iteration_time_s)


def test_an_mtp_module_is_one_more_layer_and_another_head_pass_on_the_last_stage():
    base = evaluate()
    mtp = evaluate(model=dataclasses.replace(deepseek(), mtp_depth=1.0))
    assert float(mtp.first_stage_s) == float(base.first_stage_s)
    assert float(mtp.middle_stage_s) == float(base.middle_stage_s)
    # the last stage runs 13 + 1 of a middle stage's 16 layers, then the head twice with the projection between
    send = 2.0 * float(base.pipeline_send_s)
    body = float(base.middle_stage_s) - send
    head = float(base.last_stage_s) - 13.0 / 16.0 * body - send
    heads_and_projection = float(mtp.last_stage_s) - 14.0 / 16.0 * body - send
    assert 2.0 * head < heads_and_projection < 2.2 * head
    assert float(mtp.model_flop_per_iteration) == float(base.model_flop_per_iteration)
    assert float(mtp.executed_flop_per_iteration) > float(base.executed_flop_per_iteration)
    assert float(mtp.memory_total_bytes) >= float(base.memory_total_bytes)
