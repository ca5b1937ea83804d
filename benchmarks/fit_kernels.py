"""Kernel calibration: extract public kernel measurements, then fit the kernel models to them.

Two steps, both writing under models_db/calibration/:

    # 1. extract rows from local clones of the public repositories (read with `git show`, never copied)
    python -m benchmarks.fit_kernels extract --vidur PATH --llmcompass PATH --deepgemm PATH
    # 2. fit dse.engines.kernels to every data file (pure numpy; no repositories needed)
    python -m benchmarks.fit_kernels fit

Step 1 writes models_db/calibration/data/<accelerator>.<dtype>.<stack>.<family>.json: `source`
(repository, file path, commit), what was measured and how, and the rows (columns named with SI
units). Numbers read off a published figure (FlashAttention-2/3 bar labels) are typed in below,
flagged `read_off_figure: true` in their file.

Step 2 writes models_db/calibration/fits/<same stem>.fit.json: the fitted parameters, the data file
they came from, the residuals (mean and max absolute % error of the time) and `fitted_on`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as _dt
import io
import json
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.engines.kernels import (
    AttentionKernelModel,
    GemmKernelModel,
    attention_decode_time_s,
    attention_prefill_time_s,
    gemm_time_s,
)

ROOT = Path(__file__).resolve().parents[1] / "models_db" / "calibration"
DATA = ROOT / "data"
FITS = ROOT / "fits"

# --------------------------------------------------------------------------------------------- devices
#: Datasheet facts the fits are relative to (SM count and dense tensor peaks).
#: A100: NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 108 SMs; A100 80GB SXM datasheet
#: (nvidia-a100-datasheet-us-nvidia-1758950-r4-web): 312 TFLOP/s dense fp16/bf16, 2,039 GB/s.
#: H100/H800 SXM5: NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): 132 SMs; H100 SXM
#: datasheet (2023): 989.4 TFLOP/s dense fp16/bf16, 1,978.9 TFLOP/s dense fp8, 3.35 TB/s. The H800
#: SXM5 has the H100 SXM5's SMs, tensor peaks and HBM3; it differs in NVLink bandwidth only.
DEVICES: dict[str, dict[str, float]] = {
    "a100-80gb": {"sm_count": 108, "fp16": 312e12, "bf16": 312e12, "bandwidth": 2.039e12},
    "h100-sxm": {"sm_count": 132, "fp16": 989.4e12, "bf16": 989.4e12, "fp8": 1978.9e12, "bandwidth": 3.35e12},
    "h800-sxm": {"sm_count": 132, "fp16": 989.4e12, "bf16": 989.4e12, "fp8": 1978.9e12, "bandwidth": 3.35e12},
}
BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}


# --------------------------------------------------------------------------------------------- extract
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _last_commit(repo: Path, path: str) -> str:
    return _git(repo, "log", "-1", "--format=%H", "--", path).strip()


def _write(stem: str, payload: dict[str, Any]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    payload = {"id": stem, **payload}
    text = json.dumps(payload, indent=1)
    # one row per line keeps the files reviewable
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    (DATA / f"{stem}.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {stem}: {len(payload['rows'])} rows")


#: Token counts kept from vidur's sweep (1..4096): powers of two, 1.5x points and points just past a
#: multiple of 128, so that the rows show tile and wave quantization without storing all ~260 counts.
VIDUR_TOKENS = {1, 2, 4, 8, 16, 32, 64, 96, 128, 136, 192, 256, 264, 384, 512, 520, 768, 1024, 1040, 1536, 2048,
                2080, 3072, 4096}  # fmt: skip


def extract_vidur(repo: Path) -> None:
    """microsoft/vidur data/profiling/compute/{a100,h100}/<model>/mlp.csv: the four linear layers."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    for sku, accel in (("a100", "a100-80gb"), ("h100", "h100-sxm")):
        rows: list[list[Any]] = []
        files = []
        for path in sorted(_git(repo, "ls-tree", "-r", "--name-only", head, f"data/profiling/compute/{sku}").split()):
            if not path.endswith("/mlp.csv"):
                continue
            model = "/".join(path.split("/")[3:-1])
            files.append({"path": path, "commit": _last_commit(repo, path)})
            for rec in csv.DictReader(io.StringIO(_git(repo, "show", f"{head}:{path}"))):
                t, tp = int(rec["num_tokens"]), int(rec["num_tensor_parallel_workers"])
                if t not in VIDUR_TOKENS:
                    continue
                h, a, akv = int(rec["n_embd"]), int(rec["n_head"]), int(rec["n_kv_head"])
                ff, gated = int(rec["n_expanded_embd"]), rec["use_gated_mlp"] == "True"
                d = h // a
                shapes = {  # (N, K) of each linear layer on one tensor-parallel rank (vidur mlp_impl.py)
                    "attn_pre_proj": ((a + 2 * akv) * d // tp, h),
                    "attn_post_proj": (h, a * d // tp),
                    "mlp_up_proj": ((2 if gated else 1) * ff // tp, h),
                    "mlp_down_proj": (h, ff // tp),
                }
                for op, (n, k) in shapes.items():
                    ms = float(rec[f"time_stats.{op}.median"])
                    rows.append([t, n, k, round(ms * 1e-3, 9), f"{model} tp{tp} {op}"])
        _write(
            f"{accel}.fp16.vidur-pytorch.gemm",
            {
                "accelerator": accel,
                "accelerator_note": (
                    f"vidur's '{sku}' SKU; vidur docs/profiling.md: compute profiles are per SKU, the 80 GB "
                    "part (A100: NC A100 v4 PCIe or DGX SXM; H100: DGX). Efficiencies are relative to the SXM "
                    "datasheet peaks."
                ),
                "dtype": "fp16",
                "stack": "vidur-pytorch",
                "stack_note": "PyTorch fp16 nn.Linear (cuBLAS) in sarathi's ColumnParallel/RowParallelLinear",
                "kernel_family": "gemm",
                "source": {
                    "repository": "microsoft/vidur",
                    "files": files,
                    "code": "vidur/profiling/mlp/mlp_impl.py (layer shapes), mlp_wrapper.py (fp16, 20 runs)",
                },
                "measurement": (
                    "GPU kernel time of one linear layer (torch profiler record_function trace), median over "
                    "20 runs, from the CSV's time_stats.<op>.median column (ms, converted to s)."
                ),
                "read_off_figure": False,
                "subsample": f"num_tokens in {sorted(VIDUR_TOKENS)}; every model and tensor-parallel degree",
                "columns": ["m", "n", "k", "time_s", "label"],
                "rows": rows,
            },
        )


def extract_vidur_allreduce(repo: Path) -> None:
    """microsoft/vidur data/profiling/network/{a100,h100}_dgx/all_reduce.csv (data only: not fitted here)."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    for folder, accel in (("a100_dgx", "a100-80gb"), ("h100_dgx", "h100-sxm")):
        path = f"data/profiling/network/{folder}/all_reduce.csv"
        records = list(csv.DictReader(io.StringIO(_git(repo, "show", f"{head}:{path}"))))
        sizes = sorted({int(r["size"]) for r in records})
        # the first measured size at or above each power of two, and the largest
        keep = {min(s for s in sizes if s >= 2**j) for j in range(11, 28) if 2**j <= sizes[-1]} | {sizes[-1]}
        rows: list[list[Any]] = []
        for rec in records:
            size, n = int(rec["size"]), int(rec["num_workers"])
            if size not in keep:
                continue
            t = float(rec["time_stats.all_reduce.median"]) * 1e-3
            busbw = 2.0 * (n - 1) / n * size / t
            rows.append([size, n, int(rec["devices_per_node"]), int(rec["rank"]), round(t, 9), round(busbw, 0)])
        rows.sort(key=lambda r: (r[1], r[2], r[0], r[3]))
        _write(
            f"{accel}.fp16.vidur-nccl.allreduce",
            {
                "accelerator": accel,
                "accelerator_note": f"vidur '{folder}' (docs/profiling.md: a DGX node of 8 GPUs; multi-node rows "
                "cross the cluster's network)",
                "dtype": "fp16",
                "stack": "vidur-nccl",
                "stack_note": "torch.distributed.all_reduce (NCCL), fp16 buffer, CUDA graphs disabled",
                "kernel_family": "allreduce",
                "source": {
                    "repository": "microsoft/vidur",
                    "files": [{"path": path, "commit": _last_commit(repo, path)}],
                    "code": "vidur/profiling/collectives/collectives_wrapper.py (kineto time of the nccl kernel, "
                    "median; 'size' is bytes)",
                },
                "measurement": "NCCL all-reduce kernel time (median of the profiled calls), ms converted to s.",
                "read_off_figure": False,
                "derived_columns": {
                    "bus_bandwidth_bytes_per_s": "2*(ranks-1)/ranks * message_bytes / time_s (nccl-tests "
                    "busbw definition, NVIDIA/nccl-tests doc/PERFORMANCE.md)"
                },
                "not_fitted": "collective data for the step that models communication; no kernel model here",
                "columns": ["message_bytes", "ranks", "ranks_per_node", "rank", "time_s", "bus_bandwidth_bytes_per_s"],
                "rows": rows,
            },
        )


def extract_llmcompass(repo: Path) -> None:
    """PrincetonUniversity/LLMCompass ae/figure5 real-hardware CSVs (4x A100 80GB, eager PyTorch)."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    mm_path = "ae/figure5/ab/real_hardware/matmul_A100.csv"
    rows: list[list[Any]] = []
    for line in _git(repo, "show", f"{head}:{mm_path}").splitlines():
        m, n, k, ms, _ = (x.strip() for x in line.split(","))
        rows.append([int(m), int(n), int(k), round(float(ms.removesuffix("ms")) * 1e-3, 9), "matmul sweep"])
    # GPT-3 175B layer, TP4 (d 12288, 96 heads, ae/figure5/ijkl/test_transformer.py): prefill b 8 s 2048, decode b 8.
    # Row order: the `categories` list of ae/figure5/ijkl/plot_transformer.py. Q_K_V is 3x one Q_proj timing
    # (software_model/transformer.py run_on_gpu), divided by 3 here.
    d, tp = 12288, 4
    layer_gemms = {0: ("Q_proj", d // tp, d, 3), 3: ("Wo_proj", d, d // tp, 1), 4: ("W1_proj", 4 * d // tp, d, 1),
                   5: ("W2_proj", d, 4 * d // tp, 1)}  # fmt: skip
    decode: list[list[Any]] = []
    files = [{"path": mm_path, "commit": _last_commit(repo, mm_path)}]
    for name, m in (("transformer_A100.csv", 8 * 2048), ("transformerAR_A100.csv", 8)):
        path = f"ae/figure5/ijkl/real_hardware/{name}"
        files.append({"path": path, "commit": _last_commit(repo, path)})
        values = [float(x) for x in _git(repo, "show", f"{head}:{path}").split()]
        for idx, (op, n, k, times) in layer_gemms.items():
            rows.append([m, n, k, round(values[idx] / times, 9), f"GPT-3 175B TP4 {op} m={m}"])
        if m == 8:
            # Q_mul_K reads K (b, h/tp, d_h, s), A_mul_V reads V; s = 2048 + 1024 (test_transformer.py)
            for idx, op in ((1, "Q_mul_K"), (2, "A_mul_V")):
                decode.append([8, 96 // tp, 3072, 128, 1, round(values[idx], 9), f"GPT-3 175B TP4 {op}"])
    source = {
        "repository": "PrincetonUniversity/LLMCompass",
        "files": files,
        "code": (
            "ae/figure5/ab/test_matmul.py and software_model/matmul.py Matmul.run_on_gpu (torch.matmul in "
            "bfloat16); ae/figure5/ijkl/test_transformer.py, plot_transformer.py (row names), "
            "software_model/transformer.py run_on_gpu; configs/GA100.json: NVIDIA A100(80GB)x4"
        ),
    }
    measurement = (
        "Host wall-clock of one call (time.time() around the op and torch.cuda.synchronize()), median over "
        "the runs: includes the launch and synchronisation cost of eager PyTorch."
    )
    _write(
        "a100-80gb.bf16.pytorch-eager-wallclock.gemm",
        {
            "accelerator": "a100-80gb",
            "dtype": "bf16",
            "stack": "pytorch-eager-wallclock",
            "stack_note": "torch.matmul (cuBLAS), eager, timed on the host",
            "kernel_family": "gemm",
            "source": source,
            "measurement": measurement,
            "read_off_figure": False,
            "columns": ["m", "n", "k", "time_s", "label"],
            "rows": rows,
        },
    )
    _write(
        "a100-80gb.fp16.pytorch-eager-wallclock.attention_decode",
        {
            "accelerator": "a100-80gb",
            "dtype": "fp16",
            "stack": "pytorch-eager-wallclock",
            "stack_note": "unfused decode attention: torch.bmm of q (b*h, 1, d) with the K cache, then with V",
            "kernel_family": "attention_decode",
            "source": source,
            "measurement": measurement + " Each row is ONE of the two batched GEMVs (it reads K or V, not both).",
            "read_off_figure": False,
            "columns": ["batch", "kv_heads", "kv_len", "head_dim", "tensors_read", "time_s", "label"],
            "rows": decode,
        },
    )


def extract_deepgemm(repo: Path) -> None:
    """deepseek-ai/DeepGEMM README 'Normal GEMMs for dense models' (H800 SXM5, fp8 e4m3, NVCC 12.8)."""
    # 2025-03-25 "Update performance": the last README version with the table
    commit = "55ab91f72f76e8a6db0e86282c3169a88d93df1b"
    text = _git(repo, "show", f"{commit}:README.md")
    section = text.split("### Normal GEMMs for dense models", 1)[1].split("###", 1)[0]
    rows: list[list[Any]] = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].isdigit():
            continue
        m, n, k = (int(c) for c in cells[:3])
        tflops = float(cells[3].split()[0])
        gbs = float(cells[4].split()[0])
        rows.append([m, n, k, tflops * 1e12, gbs * 1e9, round(2 * m * n * k / (tflops * 1e12), 12)])
    _write(
        "h800-sxm.fp8.deepgemm.gemm",
        {
            "accelerator": "h800-sxm",
            "accelerator_note": "H800 SXM5: the H100 SXM5's SMs, tensor peaks and HBM3 (NVLink differs)",
            "dtype": "fp8",
            "stack": "deepgemm",
            "stack_note": "DeepGEMM fp8 e4m3 GEMM, 1x128/128x128 block scaling, bf16 output, NVCC 12.8",
            "kernel_family": "gemm",
            "source": {
                "repository": "deepseek-ai/DeepGEMM",
                "files": [{"path": "README.md", "commit": commit, "section": "Performance / Normal GEMMs (dense)"}],
            },
            "measurement": "Achieved TFLOPS and memory bandwidth as published in the README table.",
            "read_off_figure": False,
            "derived_columns": {"time_s": "2*m*n*k / achieved_flops_per_s"},
            "columns": ["m", "n", "k", "achieved_flops_per_s", "achieved_memory_bytes_per_s", "time_s"],
            "rows": rows,
        },
    )


def extract_cutlass36_fp8(repo: Path) -> None:
    """The fp8 GEMMs DeepGEMM was measured against: 'our internally and carefully optimized implementation based on
    CUTLASS 3.6' (deepseek-ai/DeepGEMM README, H800 SXM5, NVCC 12.8). The README gives DeepGEMM's TFLOPS and its
    speedup over that implementation per shape, so the CUTLASS kernel's time is DeepGEMM's times the speedup (the
    speedups are printed to 0.1x: +-0.05x of rounding, 2-5% of the time). The kernel-level record of a Hopper fp8
    GEMM library before DeepGEMM (2025), for the stacks of that era (dense and grouped tables)."""
    commit = "55ab91f72f76e8a6db0e86282c3169a88d93df1b"
    text = _git(repo, "show", f"{commit}:README.md")
    sections = (
        ("### Normal GEMMs for dense models", "dense"),
        ("### Grouped GEMMs for MoE models (contiguous layout)", "contiguous"),
        ("### Grouped GEMMs for MoE models (masked layout)", "masked"),
    )
    dense: list[list[Any]] = []
    grouped: list[list[Any]] = []
    for heading, layout in sections:
        section = text.split(heading, 1)[1].split("###", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not cells[0].isdigit():
                continue
            shape = [int(c) for c in cells[: len(cells) - 3]]
            groups, (m, n, k) = (1, shape) if layout == "dense" else (shape[0], shape[1:])
            tflops = float(cells[-3].split()[0])
            speedup = float(cells[-1].rstrip("x"))
            deepgemm_s = 2 * groups * m * n * k / (tflops * 1e12)
            time_s = round(deepgemm_s * speedup, 12)
            achieved = round(2 * groups * m * n * k / time_s, -9)
            if layout == "dense":
                dense.append([m, n, k, achieved, speedup, time_s])
            else:
                grouped.append([groups, m, n, k, achieved, speedup, time_s, layout])
    common = {
        "accelerator": "h800-sxm",
        "accelerator_note": "H800 SXM5: the H100 SXM5's SMs, tensor peaks and HBM3 (NVLink differs)",
        "dtype": "fp8",
        "stack": "cutlass-3.6",
        "measurement": "DeepGEMM's achieved TFLOPS times its published speedup over the CUTLASS 3.6 implementation "
        "(speedups printed to 0.1x).",
        "read_off_figure": False,
    }
    source = {"repository": "deepseek-ai/DeepGEMM", "files": [{"path": "README.md", "commit": commit}]}
    _write(
        "h800-sxm.fp8.cutlass-3.6.gemm",
        {
            **common,
            "stack_note": "DeepSeek's fp8 e4m3 GEMM built on CUTLASS 3.6 (1x128/128x128 block scaling, bf16 output), "
            "the baseline of DeepGEMM's README: 'All speedup metrics are calculated in comparison to our internally "
            "and carefully optimized implementation based on CUTLASS 3.6'",
            "kernel_family": "gemm",
            "source": {**source, "files": [{**source["files"][0], "section": "Performance / Normal GEMMs (dense)"}]},
            "derived_columns": {
                "time_s": "2*m*n*k / DeepGEMM's achieved_flops_per_s * speedup",
                "achieved_flops_per_s": "2*m*n*k / time_s",
            },
            "columns": ["m", "n", "k", "achieved_flops_per_s", "deepgemm_speedup", "time_s"],
            "rows": dense,
        },
    )
    _write(
        "h800-sxm.fp8.cutlass-3.6.grouped_gemm",
        {
            **common,
            "stack_note": "DeepSeek's CUTLASS 3.6 grouped fp8 GEMM (the README's baseline of the grouped tables); "
            "kept to check the grouped pricing of the dense fit, not fitted",
            "kernel_family": "grouped_gemm",
            "source": {
                **source,
                "files": [{**source["files"][0], "section": "Performance / Grouped GEMMs for MoE models (both)"}],
            },
            "derived_columns": {
                "time_s": "2*groups*m*n*k / DeepGEMM's achieved_flops_per_s * speedup",
                "achieved_flops_per_s": "2*groups*m*n*k / time_s",
            },
            "columns": ["groups", "m", "n", "k", "achieved_flops_per_s", "deepgemm_speedup", "time_s", "layout"],
            "rows": grouped,
        },
    )


def extract_deepgemm_grouped(repo: Path) -> None:
    """deepseek-ai/DeepGEMM README 'Grouped GEMMs for MoE models' (contiguous and masked layouts; H800 SXM5, fp8).

    Kept to check the grouped-GEMM pricing (the dense fit at the per-group shape, `groups` problems in one
    launch), not fitted: its rows are out-of-sample for the dense table's fit."""
    commit = "55ab91f72f76e8a6db0e86282c3169a88d93df1b"
    text = _git(repo, "show", f"{commit}:README.md")
    rows: list[list[Any]] = []
    for layout in ("contiguous", "masked"):
        section = text.split(f"### Grouped GEMMs for MoE models ({layout} layout)", 1)[1].split("###", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 7 or not cells[0].isdigit():
                continue
            groups, m, n, k = (int(c) for c in cells[:4])
            tflops = float(cells[4].split()[0])
            gbs = float(cells[5].split()[0])
            time_s = round(2 * groups * m * n * k / (tflops * 1e12), 12)
            rows.append([groups, m, n, k, tflops * 1e12, gbs * 1e9, time_s, layout])
    _write(
        "h800-sxm.fp8.deepgemm.grouped_gemm",
        {
            "accelerator": "h800-sxm",
            "accelerator_note": "H800 SXM5: the H100 SXM5's SMs, tensor peaks and HBM3 (NVLink differs)",
            "dtype": "fp8",
            "stack": "deepgemm",
            "stack_note": "DeepGEMM fp8 e4m3 grouped GEMM (one launch for every group), 1x128/128x128 block "
            "scaling, bf16 output, NVCC 12.8; contiguous: the groups' tokens concatenated (prefill, training); "
            "masked: a fixed slot per group with a mask of the valid rows (decode)",
            "kernel_family": "grouped_gemm",
            "source": {
                "repository": "deepseek-ai/DeepGEMM",
                "files": [
                    {
                        "path": "README.md",
                        "commit": commit,
                        "section": "Performance / Grouped GEMMs for MoE models (contiguous layout; masked layout)",
                    }
                ],
            },
            "measurement": "Achieved TFLOPS and memory bandwidth as published in the README tables; m is the "
            "README's 'M per group'.",
            "read_off_figure": False,
            "derived_columns": {"time_s": "2*groups*m*n*k / achieved_flops_per_s"},
            "columns": [
                "groups",
                "m",
                "n",
                "k",
                "achieved_flops_per_s",
                "achieved_memory_bytes_per_s",
                "time_s",
                "layout",
            ],
            "rows": rows,
        },
    )


# FlashAttention benchmark figures: bar labels (TFLOPs/s) read off the published PNGs. Setting (README and
# benchmarks/benchmark_flash_attention.py): hidden 2048 (heads = 2048 / head_dim), batch = 16384 / seqlen, fp16;
# FLOPs = 4*batch*seqlen^2*heads*head_dim (/2 causal), x3.5 for forward+backward. None = label hidden by the legend.
FA_SEQ = (512, 1024, 2048, 4096, 8192, 16384)
FA_FIGURES: dict[str, dict[str, Any]] = {
    "a100-80gb.fp16.flash-attention-2.attention_fwd_bwd": {
        "accelerator": "a100-80gb",
        "stack": "flash-attention-2",
        "pass": "forward_backward",
        "figure": "assets/flash2_a100_fwd_bwd_benchmark.png ('Attention forward + backward speed (A100 80GB SXM4)')",
        "series": "FlashAttention-2 (purple bars)",
        "bars": {  # (head_dim, causal): TFLOP/s per FA_SEQ
            (64, False): (132, 153, 162, 171, 175, 176),
            (128, False): (None, 173, 187, 196, 201, 203),
            (64, True): (88, 119, 140, 156, 165, 171),
            (128, True): (99, 133, 155, 173, 182, 189),
        },
    },
    # FlashAttention (v1) as PyTorch 2.0 and 2.1 bundle it behind scaled_dot_product_attention (2.2 moved to v2)
    "a100-80gb.fp16.flash-attention-1.attention_fwd_bwd": {
        "accelerator": "a100-80gb",
        "stack": "flash-attention-1",
        "pass": "forward_backward",
        "figure": "assets/flash2_a100_fwd_bwd_benchmark.png ('Attention forward + backward speed (A100 80GB SXM4)')",
        "series": "FlashAttention (v1, orange bars)",
        "bars": {
            (64, False): (91, 92, 104, 108, 110, 110),
            (128, False): (76, 72, 76, 80, 82, 83),
            (64, True): (58, 70, 77, 87, 92, 97),
            (128, True): (55, 62, 69, 76, 80, 83),
        },
    },
    "h100-sxm.fp16.flash-attention-2.attention_fwd_bwd": {
        "accelerator": "h100-sxm",
        "stack": "flash-attention-2",
        "pass": "forward_backward",
        "figure": "assets/flash2_h100_fwd_bwd_benchmark.png ('Attention forward + backward speed (H100 80GB SXM5)')",
        "commit": "4f285b354796fb17df8636485b9a04df3ebbb7dc",  # last commit touching this figure
        "series": "FlashAttention-2 (purple bars)",
        "bars": {
            (64, False): (215, 254, 274, 288, 294, 296),
            (128, False): (248, 294, 320, 326, 335, 338),
            (64, True): (141, 192, 232, 257, 273, 284),
            (128, True): (163, 221, 265, 294, 308, 328),
        },
    },
    # FlashAttention (v1, the orange bars of the same H100 figure): flash-attn 1.0.x, which llm-foundry v0.3.0
    # installs (setup.py extra 'gpu': flash-attn==1.0.9); its MPT throughput tables ran the Triton FlashAttention
    # (attn_impl triton), which this figure does not measure: v1 prices it (stack pytorch-fsdp-flash-attn-1).
    "h100-sxm.fp16.flash-attention-1.attention_fwd_bwd": {
        "accelerator": "h100-sxm",
        "stack": "flash-attention-1",
        "pass": "forward_backward",
        "figure": "assets/flash2_h100_fwd_bwd_benchmark.png ('Attention forward + backward speed (H100 80GB SXM5)')",
        "commit": "4f285b354796fb17df8636485b9a04df3ebbb7dc",
        "series": "FlashAttention (orange bars)",
        "bars": {
            (64, False): (157, 159, 161, 161, 166, 168),
            (128, False): (127, 127, 128, 131, 137, 139),
            (64, True): (104, 123, 136, 138, 149, 156),
            (128, True): (98, 109, 108, 126, 135, 137),
        },
    },
    "h100-sxm.fp16.flash-attention-3.attention_fwd": {
        "accelerator": "h100-sxm",
        "stack": "flash-attention-3",
        "pass": "forward",
        "figure": "assets/flash3_fp16_fwd.png ('Attention forward speed, head dim 64/128/256 (H100 80GB SXM5)')",
        "series": "FlashAttention-3 (purple bars)",
        "bars": {
            (64, False): (333, 392, 460, 476, 496, 497),
            (64, True): (197, 265, 371, 420, 460, 473),
            (128, False): (467, 565, 625, 638, 646, 648),
            (128, True): (292, 423, 521, 579, 602, 616),
            (256, False): (482, None, 707, 736, 746, 756),
            (256, True): (286, 427, 537, 612, 628, 642),
        },
    },
    "h100-sxm.fp16.flash-attention-2.attention_fwd": {
        "accelerator": "h100-sxm",
        "stack": "flash-attention-2",
        "pass": "forward",
        "figure": "assets/flash3_fp16_fwd.png ('Attention forward speed, head dim 64/128/256 (H100 80GB SXM5)')",
        "series": "FlashAttention-2 (orange bars)",
        "bars": {
            (64, False): (282, 306, 318, 321, 322, 324),
            (64, True): (180, 229, 262, 284, 295, 299),
            (128, False): (309, 350, 362, 368, 370, 370),
            (128, True): (191, 260, 298, 319, 333, 335),
            (256, False): (275, 313, 321, 323, 324, 326),
            (256, True): (208, 251, 278, 293, 297, 298),
        },
    },
}


def extract_flash_attention(repo: Path | None) -> None:
    """Dao-AILab/flash-attention README benchmark figures (values typed in from the bar labels)."""
    fig_commit = "7ef24848cf2f855077cef88fe122775b727dcd74"  # last commit touching the other figures (2024-07-11)
    for stem, fig in FA_FIGURES.items():
        path = fig["figure"].split(" ")[0]
        commit = _last_commit(repo, path) if repo is not None else fig.get("commit", fig_commit)
        mult = 3.5 if fig["pass"] == "forward_backward" else 1.0
        rows: list[list[Any]] = []
        for (hd, causal), values in fig["bars"].items():
            heads = 2048 // hd
            for s, tf in zip(FA_SEQ, values, strict=True):
                if tf is None:
                    continue
                batch = 16384 // s
                flop = mult * 4 * batch * s * s * heads * hd / (2 if causal else 1)
                rows.append([batch, heads, s, hd, int(causal), tf * 1e12, round(flop / (tf * 1e12), 12)])
        _write(
            stem,
            {
                "accelerator": fig["accelerator"],
                "dtype": "fp16",
                "stack": fig["stack"],
                "kernel_family": "attention_" + ("fwd_bwd" if mult > 1 else "fwd"),
                "pass": fig["pass"],
                "source": {
                    "repository": "Dao-AILab/flash-attention",
                    "files": [{"path": path, "commit": commit}],
                    "figure": fig["figure"],
                    "series": fig["series"],
                    "setting": "README 'Performance' and benchmarks/benchmark_flash_attention.py: hidden 2048, "
                    "batch 16k/seqlen, fp16; the same figures appear in the FlashAttention-2 paper "
                    "(Dao 2023, Sec. 4.1) and the FlashAttention-3 paper (Shah et al. 2024, Sec. 4.1)",
                },
                "measurement": "Achieved TFLOP/s per the benchmark's FLOP count (bar labels).",
                "read_off_figure": True,
                "read_off_figure_note": "Each value is the printed label of a bar, typed in by hand from the PNG; "
                "labels hidden by the legend are left out.",
                "derived_columns": {
                    "time_s": f"{mult} * 4*batch*seq_len^2*heads*head_dim (/2 if causal) / achieved_flops_per_s"
                },
                "columns": ["batch", "heads", "seq_len", "head_dim", "causal", "achieved_flops_per_s", "time_s"],
                "rows": rows,
            },
        )


# --------------------------------------------------------------------------------------------- fit
def nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float = 0.3, iters: int = 400) -> np.ndarray:
    """Minimises f from x0 (a small, dependency-free Nelder-Mead)."""
    n = len(x0)
    simplex = np.vstack([x0] + [x0 + step * np.eye(n)[i] for i in range(n)])
    values = np.array([f(x) for x in simplex])
    for _ in range(iters):
        order = np.argsort(values)
        simplex, values = simplex[order], values[order]
        centroid = simplex[:-1].mean(axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                values[1:] = [f(x) for x in simplex[1:]]
    return np.asarray(simplex[np.argmin(values)])


def _residuals(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    err = np.abs(predicted / measured - 1.0) * 100.0
    return {"mean_abs_pct_error": round(float(err.mean()), 2), "max_abs_pct_error": round(float(err.max()), 2),
            "rows": len(measured)}  # fmt: skip


GEMM_GRID = [(tm, tn, mm) for tm in (64, 128, 256) for tn in (64, 128, 256) for mm in (16, 64) if mm <= tm]
#: continuous GEMM parameters fitted in log space
GEMM_FREE = ("compute_efficiency", "memory_efficiency", "launch_overhead_s", "k_overhead", "transition_exponent")


def _gemm_model(base: dict[str, float], x: np.ndarray) -> GemmKernelModel:
    free = dict(zip(GEMM_FREE, np.exp(x), strict=True))
    free["compute_efficiency"] = min(free["compute_efficiency"], 1.0)
    free["memory_efficiency"] = min(free["memory_efficiency"], 1.0)
    return GemmKernelModel(**base, **{k: float(v) for k, v in free.items()})  # type: ignore[arg-type]


def fit_gemm(data: dict[str, Any]) -> dict[str, Any]:
    cols = data["columns"]
    arr = np.array([[r[cols.index(c)] for c in ("m", "n", "k", "time_s")] for r in data["rows"]], dtype=float)
    m, n, k, t = arr.T
    dev = DEVICES[data["accelerator"]]
    dtype = data["dtype"]
    w = BYTES[dtype]
    best: tuple[float, dict[str, float], np.ndarray] | None = None
    x0 = np.log([0.8, 0.8, 5e-6, 64.0, 2.0])
    for tm, tn, mm in GEMM_GRID:
        base = {"sm_count": dev["sm_count"], "tile_m": tm, "tile_n": tn, "min_tile_m": mm,
                "peak_flops_per_s": dev[dtype], "memory_bandwidth_bytes_per_s": dev["bandwidth"],
                "input_bytes": w, "output_bytes": 2.0}  # fmt: skip

        def loss(x: np.ndarray, base: dict[str, float] = base) -> float:
            pred = gemm_time_s(_gemm_model(base, x), m, n, k).time_s
            return float(np.mean(np.log(pred / t) ** 2))

        x = nelder_mead(loss, x0)
        x = nelder_mead(loss, x, step=0.1)
        value = loss(x)
        if best is None or value < best[0]:
            best = (value, base, x)
    assert best is not None
    model = _rounded(_gemm_model(best[1], best[2]))
    pred = np.asarray(gemm_time_s(model, m, n, k).time_s)
    return {"model": "GemmKernelModel", "params": {k: _round(v) for k, v in vars(model).items()},
            "residuals": _residuals(pred, t)}  # fmt: skip


def fit_attention_prefill(data: dict[str, Any]) -> dict[str, Any]:
    cols = data["columns"]
    arr = np.array([[r[cols.index(c)] for c in ("batch", "heads", "seq_len", "head_dim", "causal", "time_s")]
                    for r in data["rows"]], dtype=float)  # fmt: skip
    b, h, s, d, causal, t = arr.T
    dev = DEVICES[data["accelerator"]]
    mult = 3.5 if data["pass"] == "forward_backward" else 1.0
    head_dims = tuple(float(x) for x in np.unique(d))
    params: dict[str, list[float]] = {"efficiency": [], "seq_half": [], "causal_efficiency": [], "causal_seq_half": []}
    for hd in head_dims:
        for is_causal, (ke, ks) in ((0, ("efficiency", "seq_half")), (1, ("causal_efficiency", "causal_seq_half"))):
            sel = (d == hd) & (causal == is_causal)

            def loss(x: np.ndarray, sel: np.ndarray = sel, is_causal: int = is_causal, hd: float = hd) -> float:
                eff, half = min(float(np.exp(x[0])), 1.0), float(np.exp(x[1]))
                mdl = AttentionKernelModel(peak_flops_per_s=dev["fp16"], head_dims=(hd,), efficiency=(eff,),
                                           seq_half=(half,), causal_efficiency=(eff,), causal_seq_half=(half,),
                                           flop_multiplier=mult)  # fmt: skip
                pred = attention_prefill_time_s(mdl, b[sel], h[sel], s[sel], s[sel], hd, causal=bool(is_causal))
                return float(np.mean(np.log(pred / t[sel]) ** 2))

            x = nelder_mead(loss, np.log([0.6, 500.0]))
            params[ke].append(min(float(np.exp(x[0])), 1.0))
            params[ks].append(float(np.exp(x[1])))
    model = AttentionKernelModel(peak_flops_per_s=dev["fp16"], head_dims=head_dims, flop_multiplier=mult,
                                 **{k: tuple(v) for k, v in params.items()})  # type: ignore[arg-type]  # fmt: skip
    model = _rounded(model)
    pred = np.where(
        causal > 0,
        attention_prefill_time_s(model, b, h, s, s, d, causal=True),
        attention_prefill_time_s(model, b, h, s, s, d, causal=False),
    )
    return {"model": "AttentionKernelModel", "params": {k: _round(v) for k, v in vars(model).items()},
            "residuals": _residuals(pred, t)}  # fmt: skip


def fit_attention_decode(data: dict[str, Any], launch_overhead_s: float) -> dict[str, Any]:
    cols = data["columns"]
    arr = np.array([[r[cols.index(c)] for c in ("batch", "kv_heads", "kv_len", "head_dim", "tensors_read", "time_s")]
                    for r in data["rows"]], dtype=float)  # fmt: skip
    b, hkv, s, d, tensors, t = arr.T
    dev = DEVICES[data["accelerator"]]
    w = BYTES[data["dtype"]]
    # one parameter (launch cost known), least squares on log(time) like every other family: the
    # bandwidth fraction at which the mean of log(predicted / measured) is zero (bisection; the mean
    # falls monotonically as eta grows)
    kv_bytes = b * hkv * s * d * w * tensors
    lo, hi = 1e-3, 1.0
    for _ in range(100):
        eta = 0.5 * (lo + hi)
        pred = kv_bytes / (dev["bandwidth"] * eta) + launch_overhead_s
        lo, hi = (eta, hi) if float(np.mean(np.log(pred / t))) > 0.0 else (lo, eta)
    eta = 0.5 * (lo + hi)
    model = AttentionKernelModel(peak_flops_per_s=dev["fp16"], memory_bandwidth_bytes_per_s=dev["bandwidth"],
                                 decode_memory_efficiency=eta, launch_overhead_s=launch_overhead_s)  # fmt: skip
    model = _rounded(model)
    pred = np.asarray(attention_decode_time_s(model, b, hkv, s, d, w, tensors_read=tensors))
    return {"model": "AttentionKernelModel", "params": {k: _round(v) for k, v in vars(model).items()},
            "residuals": _residuals(pred, t),
            "launch_overhead_from": "a100-80gb.bf16.pytorch-eager-wallclock.gemm (same stack and timing)"}  # fmt: skip


def _rounded(model: Any) -> Any:
    """The model with its parameters rounded as stored, so the stored residuals are the stored model's."""
    values = {k: _round(v) for k, v in vars(model).items()}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return dataclasses.replace(model, **values)


def _round(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_round(x) for x in v]
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return v


#: Families with a kernel model here; other data files (collectives) are stored for later steps.
FITTED_FAMILIES = ("gemm", "attention_fwd", "attention_fwd_bwd", "attention_decode")


def fit_all(only: Sequence[str] = ()) -> None:
    """Fit every data file (or only the stems in `only`; the others keep their fit files)."""
    FITS.mkdir(parents=True, exist_ok=True)
    today = _dt.date.today().isoformat()
    results: dict[str, dict[str, Any]] = {}
    files = sorted(DATA.glob("*.json"), key=lambda p: ("attention_decode" in p.stem, p.stem))
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        family = data["kernel_family"]
        if family not in FITTED_FAMILIES:
            continue
        if only and path.stem not in only:
            if (FITS / f"{path.stem}.fit.json").is_file():
                results[path.stem] = json.loads((FITS / f"{path.stem}.fit.json").read_text(encoding="utf-8"))
            continue
        if family == "gemm":
            fit = fit_gemm(data)
        elif family.startswith("attention_f"):
            fit = fit_attention_prefill(data)
        else:
            launch = results["a100-80gb.bf16.pytorch-eager-wallclock.gemm"]["params"]["launch_overhead_s"]
            fit = fit_attention_decode(data, launch)
        src = data["source"]
        out = {
            "id": path.stem,
            "source": f"{src['repository']}: "
            + "; ".join(f"{f['path']} @ {f['commit'][:12]}" for f in src["files"][:3])
            + (f" (+{len(src['files']) - 3} more files)" if len(src["files"]) > 3 else "")
            + (" (values read off the figure)" if data["read_off_figure"] else ""),
            "accelerator": data["accelerator"],
            "dtype": data["dtype"],
            "stack": data["stack"],
            "kernel_family": family,
            "data_file": f"models_db/calibration/data/{path.name}",
            "fit_method": "least squares on log(time) (Nelder-Mead in log-parameters; GEMM tiles by grid search), "
            "benchmarks/fit_kernels.py",
            "fitted_on": today,
            **fit,
        }
        results[path.stem] = fit
        (FITS / f"{path.stem}.fit.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        r = fit["residuals"]
        print(f"{path.stem}: mean {r['mean_abs_pct_error']}%, max {r['max_abs_pct_error']}% over {r['rows']} rows")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract rows from local clones of the source repositories")
    for name in ("vidur", "llmcompass", "deepgemm", "flash-attention"):
        ex.add_argument(f"--{name}", type=Path, help=f"path of a git clone of the {name} repository")
    fit = sub.add_parser("fit", help="fit the kernel models to models_db/calibration/data/*.json")
    fit.add_argument("--only", nargs="*", default=(), help="data file stems to fit (default: all)")
    args = parser.parse_args(argv)
    if args.command == "extract":
        if args.vidur:
            extract_vidur(args.vidur)
            extract_vidur_allreduce(args.vidur)
        if args.llmcompass:
            extract_llmcompass(args.llmcompass)
        if args.deepgemm:
            extract_deepgemm(args.deepgemm)
            extract_deepgemm_grouped(args.deepgemm)
            extract_cutlass36_fp8(args.deepgemm)
        extract_flash_attention(getattr(args, "flash_attention", None))
    else:
        fit_all(args.only)


if __name__ == "__main__":
    main()
