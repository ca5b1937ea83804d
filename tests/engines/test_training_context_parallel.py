"""Context parallelism (Megatron-Core / Llama 3) and uneven pipeline stages in the training engine.

Exact formulas are tested exactly: the exposed K/V exchange of each variant, the stage layers, the micro-batches
each stage holds, the pipeline period set by the slowest stage; then the engine's bookkeeping (tokens split over
CP, weights replicated over CP, gradients reduced over DP x CP, the breakdown adding up, the worst stage)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.collectives import all_gather_time, point_to_point_time, reduce_scatter_time
from dse.engines.plan_search import SearchSpace
from dse.engines.plan_search.space import count_candidates, enumerate_layouts, uneven_stage_layers
from dse.engines.training import (
    ClusterArrays,
    ModelArrays,
    PlanArrays,
    Schedule,
    SequenceParallel,
    describe_reasons,
    evaluate_plans,
)
from dse.engines.training.codes import ContextParallelExchange
from dse.engines.training.context_parallel import context_parallel_communication
from dse.engines.training.memory import layer_activation_bytes
from dse.engines.training.schedules import first_stage_in_flight, last_stage_in_flight, pipeline_time
from dse.engines.training.stages import stage_in_flight, stage_layers
from dse.engines.training.timeline import simulate_timeline
from dse.specs.network import ClusterSpec

CATALOG = default_catalog()
LLAMA_70B = ModelArrays.from_llm(CATALOG.get("llms", "llama2-70b"))  # 80 layers, 64 heads, 8 KV heads
SPEC = ClusterSpec(
    nodes=8,
    gpus_per_node=8,
    accelerator=CATALOG.get("accelerators", "h100-sxm"),
    intra_node_link=CATALOG.get("interconnects", "nvlink4"),
    inter_node_link=CATALOG.get("interconnects", "ib-ndr"),
    inter_node_links_per_node=8,
)
CLUSTER = ClusterArrays.from_spec(SPEC)
#: 64 GPUs: TP 8 x CP 2 x PP 4 x DP 1, 32K tokens, Megatron-SP, FlashAttention, ZeRO-1, 1F1B.
PLAN = PlanArrays(
    global_batch_size=16.0,
    micro_batch_size=1.0,
    sequence_length=32768.0,
    data_parallel=1.0,
    tensor_parallel=8.0,
    pipeline_parallel=4.0,
    sequence_parallel=float(SequenceParallel.MEGATRON),
    zero_stage=1.0,
    flash_attention=1.0,
    context_parallel=2.0,
)
P2P, ALL_GATHER = float(ContextParallelExchange.P2P), float(ContextParallelExchange.ALL_GATHER)


def one(result, name):
    return float(np.asarray(getattr(result, name)).reshape(-1)[0])


def test_p2p_hides_each_send_behind_one_attention_step():
    """(CP-1) x max(0, send - attention/CP) forward; backward: K/V with dK/dV per step, plus the last dK/dV hop."""
    bw, lat, kv = 100e9, 5e-6, 64e6
    send, send2 = (
        float(point_to_point_time(message_bytes=m, bandwidth_bytes_per_s=bw, latency_s=lat)) for m in (kv, 2 * kv)
    )
    for cp, attention_fwd, attention_bwd in [(4, 1e-3, 2.5e-3), (8, 8e-3, 20e-3), (16, 1e-4, 1e-4)]:
        comm = context_parallel_communication(
            degree=cp, exchange=P2P, kv_bytes=kv, attention_forward_s=attention_fwd, attention_backward_s=attention_bwd,
            full_recompute=0.0, p2p_bandwidth_bytes_per_s=bw, p2p_latency_s=lat, ring_bandwidth_bytes_per_s=bw,
            ring_latency_s=lat,
        )  # fmt: skip
        forward = (cp - 1) * max(send - attention_fwd / cp, 0.0)
        backward = (cp - 1) * max(send2 - attention_bwd / cp, 0.0) + send
        assert float(comm.forward_s) == pytest.approx(forward, rel=1e-12, abs=1e-18)
        assert float(comm.per_layer_s) == pytest.approx(forward + backward, rel=1e-12)
        assert float(comm.forward_bytes) == (cp - 1) * kv
        assert float(comm.buffer_bytes) == 4 * kv
    # attention long enough: only the backward's last hop is left exposed
    hidden = context_parallel_communication(
        degree=8, exchange=P2P, kv_bytes=kv, attention_forward_s=1.0, attention_backward_s=1.0, full_recompute=1.0,
        p2p_bandwidth_bytes_per_s=bw, p2p_latency_s=lat, ring_bandwidth_bytes_per_s=bw, ring_latency_s=lat,
    )  # fmt: skip
    assert float(hidden.forward_s) == 0.0 and float(hidden.per_layer_s) == pytest.approx(send, rel=1e-12)


def test_all_gather_is_exposed_and_repeated_in_backward():
    """Llama 3: gather K/V forward; backward gathers again and reduce-scatters dK/dV; full recompute gathers once
    more. CP 1 costs nothing."""
    bw, lat, kv, cp = 50e9, 10e-6, 8e6, 16
    gather = float(all_gather_time(bytes_per_rank=cp * kv, ranks=cp, bandwidth_bytes_per_s=bw, latency_s=lat))
    scatter = float(reduce_scatter_time(bytes_per_rank=cp * kv, ranks=cp, bandwidth_bytes_per_s=bw, latency_s=lat))
    for full in (0.0, 1.0):
        comm = context_parallel_communication(
            degree=cp, exchange=ALL_GATHER, kv_bytes=kv, attention_forward_s=1.0, attention_backward_s=1.0,
            full_recompute=full, p2p_bandwidth_bytes_per_s=bw, p2p_latency_s=lat, ring_bandwidth_bytes_per_s=bw,
            ring_latency_s=lat,
        )  # fmt: skip
        assert float(comm.forward_s) == pytest.approx(gather, rel=1e-12)
        assert float(comm.per_layer_s) == pytest.approx((2 + full) * gather + scatter, rel=1e-12)
        assert float(comm.forward_bytes) == (cp - 1) * kv and float(comm.buffer_bytes) == 2 * cp * kv
    off = context_parallel_communication(
        degree=1, exchange=ALL_GATHER, kv_bytes=kv, attention_forward_s=1.0, attention_backward_s=1.0,
        full_recompute=0.0, p2p_bandwidth_bytes_per_s=bw, p2p_latency_s=lat, ring_bandwidth_bytes_per_s=bw,
        ring_latency_s=lat,
    )  # fmt: skip
    assert float(off.per_layer_s) == 0.0 and float(off.buffer_bytes) == 0.0


def test_cp_one_is_the_plan_without_context_parallelism():
    base = dataclasses.replace(PLAN, context_parallel=1.0, data_parallel=2.0)
    explicit = evaluate_plans(model=LLAMA_70B, cluster=CLUSTER, plan=base)
    default = evaluate_plans(
        model=LLAMA_70B,
        cluster=CLUSTER,
        plan=PlanArrays(
            **{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name != "context_parallel"}
        ),
    )
    assert one(explicit, "iteration_time_s") == one(default, "iteration_time_s")
    assert one(explicit, "time_context_parallel_s") == 0.0 and one(explicit, "context_parallel_bytes_per_layer") == 0.0


def test_cp_splits_tokens_replicates_weights_and_reduces_gradients_over_dp_times_cp():
    """Activations per layer / CP (as a Ring split of the same degree); weights and gradients whole on each CP
    rank; ZeRO-1's optimizer shards over DP x CP (Megatron-Core's data-parallel group includes CP)."""
    shape = dict(sequence_length=32768.0, micro_batch_size=1.0, hidden_size=8192.0, num_heads=64.0, num_kv_heads=8.0,
                 ffn_hidden_size=28672.0, gated_ffn=1.0, tensor_parallel=8.0, flash_attention=1.0)  # fmt: skip
    none = layer_activation_bytes(**shape, sequence_parallel=SequenceParallel.MEGATRON).kept
    cp4 = layer_activation_bytes(**shape, sequence_parallel=SequenceParallel.MEGATRON, context_parallel=4.0).kept
    assert float(cp4) == pytest.approx(float(none) / 4, rel=1e-12)
    ring = layer_activation_bytes(**shape, sequence_parallel=SequenceParallel.RING, sequence_parallel_degree=4.0)
    ring_sp = layer_activation_bytes(**{**shape, "tensor_parallel": 1.0}, sequence_parallel=SequenceParallel.RING,
                                     sequence_parallel_degree=4.0)  # fmt: skip
    cp_no_tp = layer_activation_bytes(**{**shape, "tensor_parallel": 1.0}, context_parallel=4.0)
    assert float(cp_no_tp.kept) == pytest.approx(float(ring_sp.kept), rel=1e-12)
    assert float(ring.kept) > 0
    with_cp = evaluate_plans(model=LLAMA_70B, cluster=CLUSTER, plan=PLAN)
    without = evaluate_plans(
        model=LLAMA_70B, cluster=CLUSTER, plan=dataclasses.replace(PLAN, context_parallel=1.0, data_parallel=2.0)
    )
    assert one(with_cp, "memory_weights_bytes") == pytest.approx(one(without, "memory_weights_bytes"), rel=1e-12)
    assert one(with_cp, "memory_gradients_bytes") == pytest.approx(one(without, "memory_gradients_bytes"), rel=1e-12)
    # the same DP x CP = 2 group shards the optimizer state either way
    assert one(with_cp, "memory_optimizer_bytes") == pytest.approx(one(without, "memory_optimizer_bytes"), rel=1e-12)
    assert one(with_cp, "layer_activation_bytes") == pytest.approx(one(without, "layer_activation_bytes") / 2, rel=1e-9)
    assert one(with_cp, "time_context_parallel_s") > 0.0
    assert one(with_cp, "context_parallel_bytes_per_layer") == pytest.approx(
        2 * 2 * 1 * 16384 * (8 * 128) / 8,
        rel=1e-12,  # (CP-1) x K and V, 2 bytes, s/CP tokens, kv width / TP
    )


@pytest.mark.parametrize("exchange", [P2P, ALL_GATHER])
def test_breakdown_adds_up_with_context_parallelism_and_uneven_stages(exchange):
    plan = dataclasses.replace(
        PLAN, context_parallel_exchange=exchange, first_stage_layers=19.0, last_stage_layers=19.0
    )
    r = evaluate_plans(model=LLAMA_70B, cluster=CLUSTER, plan=plan)
    assert int(np.asarray(r.reasons).reshape(-1)[0]) & ~(1 << 16) == 0
    parts = [
        "time_forward_s", "time_backward_s", "time_recompute_s", "time_tensor_parallel_s", "time_sequence_parallel_s",
        "time_context_parallel_s", "time_pipeline_send_s", "time_zero_gather_s", "time_offload_stall_s",
        "time_bubble_s", "time_data_parallel_s", "time_optimizer_s",
    ]  # fmt: skip
    assert sum(one(r, k) for k in parts) == pytest.approx(one(r, "iteration_time_s"), rel=1e-12)


def test_stage_layers_and_what_each_stage_holds():
    first, middle, last = stage_layers(num_layers=126, pipeline_parallel=16, first_stage_layers=7, last_stage_layers=7)
    assert (float(first), float(middle), float(last)) == (7.0, 8.0, 7.0)
    assert tuple(float(x) for x in stage_layers(num_layers=80, pipeline_parallel=4)) == (20.0, 20.0, 20.0)
    assert (
        tuple(float(x) for x in stage_layers(num_layers=80, pipeline_parallel=1, first_stage_layers=3)) == (80.0,) * 3
    )
    cases = [(Schedule.GPIPE, 4, 8, 1), (Schedule.ONE_F_ONE_B, 8, 16, 1), (Schedule.INTERLEAVED, 4, 8, 2)]
    for schedule, p, m, v in [*cases, (Schedule.INTERLEAVED, 8, 64, 3)]:
        assert float(stage_in_flight(schedule=schedule, stages=p, stage=0, micro_batches=m, virtual_stages=v)) == float(
            first_stage_in_flight(schedule=schedule, stages=p, micro_batches=m, virtual_stages=v)
        )
        assert float(
            stage_in_flight(schedule=schedule, stages=p, stage=p - 1, micro_batches=m, virtual_stages=v)
        ) == float(last_stage_in_flight(schedule=schedule, stages=p, micro_batches=m, virtual_stages=v))
    assert float(stage_in_flight(schedule=Schedule.ONE_F_ONE_B, stages=16, stage=1, micro_batches=32)) == 15.0


def test_slowest_stage_sets_the_period_and_the_second_stage_can_peak():
    """80 layers on 8 stages as `uneven_stage_layers` splits them: 7 / 11 x 6 / 7. The period is
    M x max(stage) + (sum - max) / v; under 1F1B the second stage (p-1 = 7 micro-batches of 11 layers) out-holds
    the first (8 of 7, plus the embedding) and is reported."""
    plan = dataclasses.replace(PLAN, first_stage_layers=7.0, last_stage_layers=7.0, context_parallel=1.0,
                               pipeline_parallel=8.0, global_batch_size=32.0)  # fmt: skip
    r = evaluate_plans(model=LLAMA_70B, cluster=CLUSTER, plan=plan)
    first, middle, last = one(r, "first_stage_s"), one(r, "middle_stage_s"), one(r, "last_stage_s")
    stages = [first, *[middle] * 6, last]
    period = pipeline_time(
        slowest_stage_s=max(stages), sum_of_stages_s=sum(stages), micro_batches=one(r, "micro_batches")
    )
    pipe = one(r, "iteration_time_s") - one(r, "time_data_parallel_s") - one(r, "time_optimizer_s")
    assert pipe == pytest.approx(float(period), rel=1e-12)
    assert middle > first and one(r, "peak_stage") == 1.0
    even = evaluate_plans(
        model=LLAMA_70B, cluster=CLUSTER, plan=dataclasses.replace(plan, first_stage_layers=0.0, last_stage_layers=0.0)
    )
    assert one(even, "peak_stage") == 0.0
    # even stages: the last runs the logits and loss, the first the embedding; the middle neither
    assert one(even, "last_stage_s") > one(even, "middle_stage_s") and one(even, "first_stage_s") > one(
        even, "middle_stage_s"
    )


def test_reasons_for_context_parallelism_and_stage_layers():
    def reasons(**change):
        r = evaluate_plans(model=LLAMA_70B, cluster=CLUSTER, plan=dataclasses.replace(PLAN, **change))
        return {x.name for x in describe_reasons(int(np.asarray(r.reasons).reshape(-1)[0]))} - {"OUT_OF_MEMORY"}

    assert reasons() == set()
    assert "GPU_COUNT" in reasons(context_parallel=4.0)
    assert (
        reasons(
            sequence_parallel=float(SequenceParallel.RING),
            sequence_parallel_degree=2.0,
            context_parallel=1.0,
            data_parallel=1.0,
        )
        == set()
    )
    assert "CP_WITH_RING_ULYSSES" in reasons(
        sequence_parallel=float(SequenceParallel.RING), sequence_parallel_degree=2.0, tensor_parallel=4.0
    )
    assert "CP_SEQUENCE_SPLIT" in reasons(sequence_length=32776.0)  # divisible by 8 (SP) but not by 2 x 2 x 8
    assert reasons(first_stage_layers=18.0) == set()  # last: the even 20; the two middle stages: 21 each
    assert "STAGE_LAYERS" in reasons(first_stage_layers=19.0, last_stage_layers=20.0)  # 41 over 2 middle stages
    assert reasons(first_stage_layers=19.0, last_stage_layers=19.0) == set()
    assert "STAGE_LAYERS" in reasons(pipeline_parallel=1.0, data_parallel=4.0, first_stage_layers=40.0)
    interleaved = dict(pipeline_schedule=float(Schedule.INTERLEAVED), virtual_stages=3.0)
    assert "LAYERS" in reasons(**interleaved)  # 4 stages x 3 chunks do not divide 80 layers
    assert reasons(**interleaved, first_stage_layers=19.0, last_stage_layers=19.0) == set()  # 3 chunks of 21 / 3
    assert "STAGE_LAYERS" in reasons(**interleaved, first_stage_layers=20.0, last_stage_layers=20.0)
    assert "UNKNOWN_CODE" in reasons(context_parallel_exchange=2.0)


def test_timeline_draws_the_exchange_inside_each_pass_and_the_first_stage_extra():
    base = dict(schedule=Schedule.ONE_F_ONE_B, stages=4, micro_batches=8, virtual_stages=1, chunk_forward_s=1.0,
                chunk_backward_s=2.0, send_s=0.0)  # fmt: skip
    plain = simulate_timeline(**base)
    split = simulate_timeline(**base, context_parallel_forward_s=0.25, context_parallel_backward_s=0.5)
    assert split.pipeline_end_s == pytest.approx(plain.pipeline_end_s, rel=1e-12)
    exchanges = [e for e in split.events if e.operation == "context_parallel"]
    assert len(exchanges) == 2 * 4 * 8
    assert sum(e.end_s - e.start_s for e in exchanges) == pytest.approx(4 * 8 * 0.75, rel=1e-12)
    lighter = simulate_timeline(**base, first_stage_extra_forward_s=-0.5, first_stage_extra_backward_s=-1.0)
    forwards = [(e.stage, e.end_s - e.start_s) for e in lighter.events if e.operation == "forward"]
    assert {d for stage, d in forwards if stage == 0} == {0.5} and {d for stage, d in forwards if stage == 1} == {1.0}


def test_plan_search_enumerates_context_parallel_and_uneven_layouts():
    assert uneven_stage_layers(num_layers=126, stages=np.array([16, 2, 3, 8])).tolist() == [7, 0, 0, 15]
    space = SearchSpace(context_parallel_exchanges=(0, 1), uneven_stages=True, node_counts=(8,))
    layouts = enumerate_layouts(space=space, nodes=8, gpus_per_node=8, sequence_parallel=space.sequence_parallel,
                                num_layers=126)  # fmt: skip
    degrees = layouts.data_parallel * layouts.tensor_parallel * layouts.pipeline_parallel
    degrees = degrees * layouts.sequence_parallel_degree * layouts.context_parallel
    assert np.all(degrees == layouts.gpus)
    cp = layouts.context_parallel >= 2
    assert cp.any() and set(np.unique(layouts.context_parallel_exchange[cp]).tolist()) == {0.0, 1.0}
    assert not np.any(cp & (layouts.sequence_parallel_degree > 1))
    uneven = layouts.first_stage_layers > 0
    assert uneven.any() and np.all(layouts.pipeline_parallel[uneven] >= 3)
    inner_size = count_candidates(
        space=space, nodes=8, gpus_per_node=8, global_batch_size=64, num_layers=126, has_ssd=False
    )
    assert inner_size[0] == len(layouts)
    plain = enumerate_layouts(space=SearchSpace(node_counts=(8,)), nodes=8, gpus_per_node=8,
                              sequence_parallel=SearchSpace().sequence_parallel, num_layers=126)  # fmt: skip
    assert np.all(plain.context_parallel == 1.0) and np.all(plain.first_stage_layers == 0.0)
