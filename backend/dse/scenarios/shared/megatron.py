"""Megatron-LM's published training plans (Narayanan et al., SC'21, Table 1) and the MFU of its 2023 baseline in
MegaScale (NSDI'24), used by the training kind (its published figures and the comparison shown beside a Table 1
scenario) and by plan_search (the published plan and runs beside the best plan found)."""

from __future__ import annotations

import dataclasses

from dse.engines.training import ClusterArrays, PlanArrays
from dse.engines.training.codes import RECOMPUTE_CODES, SCHEDULE_CODES

#: Source of NARAYANAN_TABLE1.
TABLE1_SOURCE = "Narayanan et al., SC'21, Table 1 (A100, seq 2048, full recomputation)"
#: Source of RUN_TABLE_1.
RUN_TABLE_1_SOURCE = "NVIDIA/Megatron-LM examples/sc21/run_table_1.sh"

#: Narayanan et al. (SC'21) Table 1: model id -> (t, p, GPUs, global batch, achieved TFLOP/s per GPU).
NARAYANAN_TABLE1: dict[str, tuple[int, int, int, int, float]] = {
    "megatron-gpt-1.7b": (1, 1, 32, 512, 137.0),
    "megatron-gpt-3.6b": (2, 1, 64, 512, 138.0),
    "megatron-gpt-7.5b": (4, 1, 128, 512, 142.0),
    "megatron-gpt-18.4b": (8, 1, 256, 1024, 135.0),
    "megatron-gpt-39.1b": (8, 2, 512, 1536, 138.0),
    "megatron-gpt-76.1b": (8, 4, 1024, 1792, 140.0),
    "megatron-gpt-145.6b": (8, 8, 1536, 2304, 148.0),
    "megatron-gpt-310.1b": (8, 16, 1920, 2160, 155.0),
    "megatron-gpt-529.6b": (8, 35, 2520, 2520, 163.0),
    "megatron-gpt-1t": (8, 64, 3072, 3072, 163.0),
}

#: The SC'21 runs trained in fp16 without fp32 gradient accumulation (NVIDIA/Megatron-LM
#: examples/academic_paper_scripts/sc21/CONFIG.sh @ d98e8a64ddf34856e74b24714e3bedb2f5a39553, MEGATRON_PARAMS:
#: '--fp16 --loss-scale 8192', no --accumulate-allreduce-grads-in-fp32): their gradient buffers and all-reduces
#: are 2 bytes per parameter, where today's stack under bf16 keeps and reduces fp32 gradients.
SC21_GRADIENT_BYTES_PER_PARAM = 2.0


def sc21_cluster(cluster: ClusterArrays) -> ClusterArrays:
    """The cluster as the SC'21 runs used it: the same kernels and peak, fp16 gradients
    (`SC21_GRADIENT_BYTES_PER_PARAM`)."""
    return dataclasses.replace(cluster, gradient_reduce_bytes_per_param=SC21_GRADIENT_BYTES_PER_PARAM)


#: Micro-batch, interleaved chunks and whether DDP overlaps the gradient all-reduce (torch DDP does,
#: Megatron's local DDP does not), per Table 1 row, from NVIDIA/Megatron-LM examples/sc21/run_table_1.sh.
RUN_TABLE_1: dict[str, tuple[int, int, bool]] = {
    "megatron-gpt-1.7b": (16, 1, True),
    "megatron-gpt-3.6b": (16, 1, True),
    "megatron-gpt-7.5b": (16, 1, True),
    "megatron-gpt-18.4b": (8, 1, True),
    "megatron-gpt-39.1b": (4, 1, False),
    "megatron-gpt-76.1b": (2, 3, False),
    "megatron-gpt-145.6b": (2, 2, False),
    "megatron-gpt-310.1b": (1, 2, False),
    "megatron-gpt-529.6b": (1, 3, False),
    "megatron-gpt-1t": (1, 1, False),
}


def published_plan(model_id: str) -> PlanArrays:
    """The plan Narayanan et al. ran for a Table 1 model (full recomputation, 1F1B or interleaved)."""
    t, p, gpus, batch, _ = NARAYANAN_TABLE1[model_id]
    micro, chunks, overlap = RUN_TABLE_1[model_id]
    return PlanArrays(
        global_batch_size=float(batch),
        micro_batch_size=float(micro),
        sequence_length=2048.0,
        data_parallel=float(gpus // (t * p)),
        tensor_parallel=float(t),
        pipeline_parallel=float(p),
        recompute=float(RECOMPUTE_CODES["full"]),
        pipeline_schedule=float(SCHEDULE_CODES["interleaved" if chunks > 1 else "1f1b"]),
        virtual_stages=float(chunks),
        overlap_grad_reduce=1.0 if overlap else 0.0,
    )


MEGASCALE = "Jiang et al., MegaScale: Scaling Large Language Model Training to More Than 10,000 GPUs (USENIX NSDI '24)"
#: Table 2 (175B: h 12288, 96 layers, 128 heads, t 8 x p 8, 6 interleaved chunks) and Table 3's baseline, the
#: Megatron-LM rows: (global batch, GPUs, MFU, where it is printed).
MEGASCALE_175B_ROWS: tuple[tuple[int, int, float, str], ...] = (
    (768, 256, 0.530, "Table 2"),
    (768, 512, 0.499, "Table 2"),
    (768, 768, 0.467, "Table 2"),
    (768, 1024, 0.447, "Table 2"),
    (6144, 3072, 0.487, "Table 2"),
    (6144, 6144, 0.478, "Table 2"),
    (6144, 8192, 0.433, "Table 2"),
    (6144, 12288, 0.412, "Table 2"),
    (256, 256, 0.477, "Table 3 (baseline)"),
)
