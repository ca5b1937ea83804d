"""Memory per GPU: Korthikanti et al. (2022) activation formulas, ZeRO sharding, in-flight micro-batches.

Exact formulas are tested exactly (tolerance: float rounding, rel 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.engines.training import Recompute, Schedule, SequenceParallel
from dse.engines.training.memory import korthikanti_table2_bytes, layer_activation_bytes, model_state_bytes
from dse.engines.training.schedules import first_stage_in_flight, last_stage_in_flight

# Korthikanti et al. 2022 Table 3 shapes (22B, 175B, 530B, 1T), sequence 2048, with their t = 8.
SHAPES = [(6144, 64), (12288, 96), (20480, 128), (25600, 160)]


def gpt_layer(*, s, b, h, a, t, sp, recompute):
    return layer_activation_bytes(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=h,
        num_heads=a,
        num_kv_heads=a,
        ffn_hidden_size=4 * h,
        gated_ffn=0.0,
        tensor_parallel=t,
        sequence_parallel=SequenceParallel.MEGATRON if sp else SequenceParallel.NONE,
        recompute=recompute,
    ).kept


@pytest.mark.parametrize(("h", "a"), SHAPES)
@pytest.mark.parametrize("t", [1, 2, 8])
def test_korthikanti_table2_every_variant(h, a, t):
    """Korthikanti et al. 2022, Section 4 and Table 2, literally; exact."""
    s, b = 2048.0, 1.0
    sbh = s * b * h
    literal = {
        ("none", False): sbh * (10 + 24 / t + 5 * a * s / (h * t)),
        ("none", True): sbh / t * (34 + 5 * a * s / h),
        ("selective", False): sbh * (10 + 24 / t),
        ("selective", True): 34 * sbh / t,
        ("full", False): 2 * sbh,
    }
    codes = {"none": Recompute.NONE, "selective": Recompute.SELECTIVE, "full": Recompute.FULL}
    for (recompute, sp), expected in literal.items():
        engine = gpt_layer(s=s, b=b, h=h, a=a, t=t, sp=sp, recompute=codes[recompute])
        assert engine == pytest.approx(expected, rel=1e-12), (recompute, sp)
        table = korthikanti_table2_bytes(s=s, b=b, h=h, a=a, t=t, sequence_parallel=sp, recompute=recompute)
        assert table == pytest.approx(expected, rel=1e-12)


def test_no_parallelism_is_34_plus_5as_over_h():
    """Korthikanti eq. (1): s*b*h*(34 + 5*a*s/h) per layer without parallelism; exact."""
    s, b, h, a = 2048.0, 4.0, 6144.0, 64.0
    assert gpt_layer(s=s, b=b, h=h, a=a, t=1, sp=False, recompute=0) == pytest.approx(s * b * h * (34 + 5 * a * s / h))


def test_ring_and_ulysses_split_the_sequence():
    """Li et al. 2021: each of N devices keeps s/N tokens and b*a*(s/N)*s scores; the layer's bytes divide by N."""
    base = dict(sequence_length=8192.0, micro_batch_size=1.0, hidden_size=4096.0, num_heads=32.0, num_kv_heads=32.0)
    base |= dict(ffn_hidden_size=16384.0, gated_ffn=0.0)
    whole = layer_activation_bytes(**base).kept
    for variant in (SequenceParallel.RING, SequenceParallel.ULYSSES):
        split = layer_activation_bytes(**base, sequence_parallel=variant, sequence_parallel_degree=8.0)
        assert split.kept == pytest.approx(whole / 8.0, rel=1e-12)
        assert split.attention_scores == pytest.approx(5.0 * 32 * (8192 / 8) * 8192)


def test_gqa_and_swiglu_change_the_split_part():
    """Llama-style layer: K and V shrink to a_kv/a of Q; SwiGLU keeps gate, up and product (6*s*b*f)."""
    s, b, h, a, a_kv, f = 4096.0, 1.0, 8192.0, 64.0, 8.0, 28672.0
    got = layer_activation_bytes(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=h,
        num_heads=a,
        num_kv_heads=a_kv,
        ffn_hidden_size=f,
        gated_ffn=1.0,
    )
    kv_width = a_kv * h / a
    assert got.tensor_parallel_split == pytest.approx(
        2 * s * b * h + 4 * s * b * kv_width + 2 * s * b * h + 6 * s * b * f
    )


def test_zero_stages_shard_16_bytes_per_parameter():
    """Rajbhandari et al. 2020 (ZeRO), Figure 1: 2+2+12 bytes/param; stages 1/2/3 shard optimizer/+grads/+weights."""
    P, dp = 7.5e9, 64.0
    totals = [float(model_state_bytes(params_per_gpu=P, zero_stage=z, zero_group=dp).total) for z in range(4)]
    assert totals == pytest.approx([16 * P, 4 * P + 12 * P / dp, 2 * P + 14 * P / dp, 16 * P / dp])


def test_in_flight_micro_batches_per_schedule():
    """GPipe keeps all M; 1F1B keeps min(K, M) on stage 1 and 1 on the last; interleaving multiplies
    stage 1 by (1 + (K-1)/(K*v)) (Korthikanti 2022, Section 4.2.3)."""
    K, M, v = 8.0, 32.0, 4.0
    assert first_stage_in_flight(schedule=Schedule.GPIPE, stages=K, micro_batches=M) == M
    assert last_stage_in_flight(schedule=Schedule.GPIPE, stages=K, micro_batches=M) == M
    assert first_stage_in_flight(schedule=Schedule.ONE_F_ONE_B, stages=K, micro_batches=M) == K
    assert first_stage_in_flight(schedule=Schedule.ONE_F_ONE_B, stages=K, micro_batches=3.0) == 3.0
    assert last_stage_in_flight(schedule=Schedule.ONE_F_ONE_B, stages=K, micro_batches=M) == 1.0
    interleaved = first_stage_in_flight(schedule=Schedule.INTERLEAVED, stages=K, micro_batches=M, virtual_stages=v)
    assert interleaved == pytest.approx(K * (1 + (K - 1) / (K * v)))
    # Broadcasts over arrays of plans.
    many = first_stage_in_flight(schedule=np.array([0.0, 1.0, 2.0]), stages=K, micro_batches=M, virtual_stages=v)
    assert many.tolist() == pytest.approx([M, K, K * (1 + (K - 1) / (K * v))])


def test_flash_attention_stores_no_scores():
    """Dao et al. 2022: FlashAttention keeps only the fp32 log-sum-exp (4 bytes per query and head), so the
    layer keeps Korthikanti's s*b*h*(10 + 24/t) plus 4*a*s*b/t bytes; exact."""
    s, b, h, a, t = 8192.0, 1.0, 4096.0, 32.0, 2.0
    got = layer_activation_bytes(
        sequence_length=s,
        micro_batch_size=b,
        hidden_size=h,
        num_heads=a,
        num_kv_heads=a,
        ffn_hidden_size=4 * h,
        gated_ffn=0.0,
        tensor_parallel=t,
        flash_attention=1.0,
    ).kept
    assert got == pytest.approx(s * b * h * (10 + 24 / t) + 4 * a * s * b / t, rel=1e-12)


@pytest.mark.parametrize(("h", "a"), SHAPES)
def test_recomputation_rebuilds_one_layer_at_a_time(h, a):
    """Backward of a recomputed layer re-materialises what the plan dropped, for one layer at a time:
    full recomputation rebuilds the whole layer (Table 2's no-recompute bytes minus the kept 2sbh input),
    selective the attention scores (5as/(ht) * sbh); no recomputation rebuilds nothing. Exact."""
    s, b, t = 2048.0, 1.0, 8.0
    sbh = s * b * h
    working = {
        code: layer_activation_bytes(
            sequence_length=s,
            micro_batch_size=b,
            hidden_size=h,
            num_heads=a,
            num_kv_heads=a,
            ffn_hidden_size=4 * h,
            gated_ffn=0.0,
            tensor_parallel=t,
            recompute=code,
        ).recompute_working_set
        for code in (Recompute.NONE, Recompute.SELECTIVE, Recompute.FULL)
    }
    assert working[Recompute.NONE] == 0.0
    assert working[Recompute.SELECTIVE] == pytest.approx(sbh * 5 * a * s / (h * t), rel=1e-12)
    assert working[Recompute.FULL] == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)) - 2 * sbh, rel=1e-12)
