"""The inference kind's analyses beyond the metrics: the systems compared over a batch grid, the
NeuPIMs interleaving crossover, the per-op and PIM tables, the notes that state a verdict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.engines.decoder_ops import BOUND_NAMES, OP_NAMES
from dse.engines.device import Device
from dse.engines.inference import (
    PIM_SYSTEMS,
    SPLIT_CANDIDATES,
    InferenceResult,
    SharedWork,
    Workload,
    op_unit,
    run_inference,
)
from dse.engines.pim import pim_numbers
from dse.engines.transformer import expected_distinct_experts
from dse.scenarios.base import Column, Table
from dse.scenarios.kinds.inference.inputs import (
    SYSTEM_LABELS,
    InferenceResolved,
    device_of,
    engine_inputs,
    workload,
)
from dse.scenarios.kinds.inference.metrics import moe_step
from dse.specs.hardware import AcceleratorSpec
from dse.specs.memory import MemorySpec

#: Batches tried for the throughput-vs-batch chart and the interleaving crossover.
BATCH_GRID: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024)

Row = list[float | int | str | bool | None]


def run(r: InferenceResolved, system: str | None = None, accelerator: AcceleratorSpec | None = None) -> InferenceResult:
    """The engine on the resolved tree (optionally another system and device)."""
    return run_inference(**engine_inputs(r, system=system, accelerator=accelerator))


class Runner:
    """The engine calls of one answer: every system, device, batch and split of `r` on the same model,
    deployment and workload objects, so that the calls share what does not depend on the system
    (`SharedWork`: the numbers are those of `run`)."""

    def __init__(self, r: InferenceResolved) -> None:
        self.r = r
        self._base = engine_inputs(r)
        self._shared = SharedWork()
        self._devices: dict[int, tuple[AcceleratorSpec, Device]] = {}
        self._workloads: dict[tuple[tuple[int, ...], bytes], Workload] = {}
        self._results: dict[tuple[object, ...], InferenceResult] = {}

    def run(
        self,
        system: str | None = None,
        accelerator: AcceleratorSpec | None = None,
        *,
        batch: np.ndarray[Any, Any] | None = None,
        search_split: bool = False,
    ) -> InferenceResult:
        """`run` of `r` with another system, device or batch (an array: the batch grid), or searching the
        NeuPIMs split whatever `r` fixes; a call asked for again is answered from the first."""
        r = self.r
        accelerator = accelerator or r.accelerator
        system = system or r.system
        split = None if search_split else r.sub_batch_fraction
        key = (system, id(accelerator), None if batch is None else (batch.shape, batch.tobytes()), split)
        if key in self._results:
            return self._results[key]
        kept = self._devices.get(id(accelerator))
        if kept is None:
            kept = self._devices[id(accelerator)] = (accelerator, device_of(r, accelerator).device)
        workload_in = self._base["workload"]
        if batch is not None:
            batch_key = (batch.shape, batch.tobytes())
            if batch_key not in self._workloads:
                self._workloads[batch_key] = workload(dataclasses.replace(r, batch_size=batch))  # type: ignore[arg-type]
            workload_in = self._workloads[batch_key]
        result = run_inference(
            **{
                **self._base,
                "system": system,
                "device": kept[1],
                "workload": workload_in,
                "sub_batch_fraction": split,
                "shared": self._shared,
            }
        )
        self._results[key] = result
        return result


def comparable_systems(r: InferenceResolved) -> dict[str, AcceleratorSpec]:
    """Systems that can run this scenario's model, each with its device."""
    systems: dict[str, AcceleratorSpec] = {"gpu_only": r.comparison_gpu}
    npu = r.accelerator if r.accelerator.device_class == "npu" else None
    if npu is not None:
        systems["npu_only"] = npu
    has_pim = r.memory is not None and r.memory.pim_multipliers_per_bank > 0
    if npu is not None and has_pim:
        systems["npu_pim_blocked"] = npu
        assert r.memory is not None
        if r.memory.pim_row_buffers_per_bank >= 2:
            systems["neupims"] = npu
    if has_pim:
        systems["gpu_pim"] = r.comparison_gpu if r.accelerator.device_class == "npu" else r.accelerator
    systems[r.system] = r.accelerator
    return systems


@dataclass(frozen=True)
class SystemsComparison:
    """Every comparable system: its throughput over BATCH_GRID and its row at this batch."""

    throughput_by_system: dict[str, list[float]]
    rows: list[Row]


def compare_systems(runner: Runner, systems: dict[str, AcceleratorSpec], result: InferenceResult) -> SystemsComparison:
    """Each system over the batch grid (one engine call) and at this scenario's batch."""
    r = runner.r
    grid = np.asarray(BATCH_GRID, dtype=np.float64)
    by_system: dict[str, list[float]] = {}
    rows: list[Row] = []
    for system, device in systems.items():
        by_system[system] = [
            float(v) for v in np.asarray(runner.run(system, device, batch=grid).throughput_tokens_per_s)
        ]
        here = result if system == r.system and device is r.accelerator else runner.run(system, device)  # same inputs
        rows.append(
            [
                SYSTEM_LABELS[system],
                device.id,
                float(here.throughput_tokens_per_s),
                float(here.time_per_output_token_s) * 1e3,
                float(np.asarray(result.throughput_tokens_per_s) / here.throughput_tokens_per_s),
                bool(float(here.fits) > 0),
            ]
        )
    return SystemsComparison(throughput_by_system=by_system, rows=rows)


def systems_table(r: InferenceResolved, rows: list[Row]) -> Table:
    return Table(
        key="systems",
        title=f"Systems at batch {r.batch_size:.0f}",
        columns=[
            Column(key="system", label="system"),
            Column(key="device", label="device"),
            Column(key="throughput", label="throughput", unit="tokens/s"),
            Column(key="tpot", label="time per output token", unit="ms"),
            Column(key="speedup", label=f"{SYSTEM_LABELS[r.system]} over this", unit="x"),
            Column(key="fits", label="fits in memory"),
        ],
        rows=rows,
    )


def stack_notes(r: InferenceResolved, systems: dict[str, AcceleratorSpec]) -> list[str]:
    """Which software stack and which kernel fits priced each device of the comparison."""
    if r.software_stack is None:
        return ["Software stack: none (roofline with each accelerator's single efficiencies)."]
    notes = []
    for device in {d.id: d for d in systems.values()}.values():
        notes.append(f"{device.id} ({r.activation_dtype}): {device_of(r, device).note()}.")
    return notes


def fit_note(r: InferenceResolved, result: InferenceResult) -> str:
    """Whether the batch fits in each device's memory, with the footprint and the largest batch (GiB)."""
    gib = float(2**30)
    footprint = float(result.memory_footprint_bytes_per_device) / gib
    capacity = r.accelerator.memory_capacity_bytes / gib
    reserve = float(device_of(r).device.memory_reserve_bytes) / gib
    of = f"{capacity:.2f} GiB" + (f" ({reserve:.2f} GiB of it kept back by the runtime)" if reserve > 0 else "")
    largest = float(result.max_batch_that_fits)
    in_flight = (
        f" ({r.pipeline_parallel:.0f} such batches in flight over the PP stages)" if r.pipeline_parallel > 1 else ""
    )
    if bool(np.all(np.asarray(result.fits) > 0)):
        return (
            f"Fits: {footprint:.2f} GiB per device of {of}; "
            f"the largest batch that fits is {largest:.0f}{in_flight}."
        )
    return (
        f"Does not fit: batch {r.batch_size:.0f} needs {footprint:.2f} GiB "
        f"per device (weights {float(result.weights_bytes_per_device) / gib:.2f} GiB + KV cache "
        f"{float(result.kv_cache_bytes_per_device) / gib:.2f} GiB) but {r.accelerator.id} has "
        f"{of}; the largest batch that fits is {largest:.0f}{in_flight}."
    )


def expert_exchange_note(r: InferenceResolved, result: InferenceResult) -> list[str]:
    """With data-parallel attention: the dispatch and combine of a decode layer, whole and what they add."""
    exchange = r.expert_exchange
    if exchange is None:
        return []
    whole = float(np.asarray(result.expert_all_to_all_time_s))
    added = sum(float(np.asarray(result.decode_ops[n].time_s)) for n in ("expert_dispatch", "expert_combine"))
    nodes = r.expert_parallel / float(exchange.ranks_per_node)
    overlap = (
        f"two-batch overlap hides all but {added * 1e6:.0f} us of it under the other micro-batch's compute"
        if exchange.two_batch_overlap
        else "without overlap it adds all of it"
    )
    return [
        f"Expert all-to-alls: over EP {r.expert_parallel:.0f} ({max(nodes, 1.0):.3g} nodes of "
        f"{exchange.ranks_per_node:.0f} GPUs) a decode layer's dispatch and combine take {whole * 1e6:.0f} us "
        f"(DeepEP's kernels, calibrated on its H800 tables); {overlap}. Per GPU "
        f"{float(np.asarray(result.throughput_tokens_per_s_per_device)):,.0f} output tokens/s, "
        f"{float(np.asarray(result.throughput_tokens_per_s)):,.0f} for the {float(np.asarray(result.devices)):.0f} "
        "GPUs of the replica."
    ]


def architecture_notes(r: InferenceResolved) -> list[str]:
    """What a mixture-of-experts or latent-attention model changes in the decode step (none for a dense model)."""
    llm = r.model
    notes: list[str] = []
    if llm.is_moe:
        e, k, shared = llm.num_experts, llm.experts_per_token, llm.num_shared_experts
        dp = r.attention_data_parallel  # the routed experts see every data-parallel attention rank's tokens
        decode = float(expected_distinct_experts(e, k, dp * r.batch_size))
        prefill = float(expected_distinct_experts(e, k, dp * r.batch_size * r.prompt_tokens))
        notes.append(
            f"Mixture of experts: each decode step's {dp * r.batch_size:.0f} tokens touch E(1 - (1 - k/E)^B) = "
            f"{decode:.1f} of the {e} experts of each MoE layer (k = {k} per token"
            + (f", + {shared} shared" if shared else "")
            + f"), so the expert GEMMs read {decode / e:.0%} of the routed weights while computing k per token; "
            f"prefill's {dp * r.batch_size * r.prompt_tokens:.0f} tokens touch {prefill:.1f}. "
            f"{llm.moe_layers} of {llm.num_layers} layers are MoE; "
            + (
                "experts are split by tensor parallelism."
                if r.expert_parallel == 1
                else f"data-parallel attention over {dp:.0f} ranks of TP{r.tensor_parallel:.0f}: each GPU holds "
                f"{e / r.expert_parallel:.3g} of the routed experts whole and runs attention, the dense layers and "
                f"the shared experts for its rank's {r.batch_size:.0f} requests."
                if r.expert_exchange is not None
                else f"expert parallelism {r.expert_parallel:.0f}: each GPU holds {e / r.expert_parallel:g} whole "
                f"experts split over TP/EP = {r.tensor_parallel / r.expert_parallel:g} GPUs, the busiest GPU "
                f"computes {r.expert_load_imbalance:g} x the mean tokens; the same expert bytes per GPU as TP, "
                "and the combine stays the TP all-reduce (attention is TP, every GPU holds every token)."
            )
        )
        if r.system in PIM_SYSTEMS:
            notes.append(
                "On PIM: only the attention GEMVs move to the PIM units, as for a dense model; the router and "
                "the expert FFNs stay on the NPU."
            )
    if llm.is_mla:
        assert llm.kv_lora_rank is not None and llm.qk_rope_head_dim is not None
        assert llm.qk_nope_head_dim is not None and llm.v_head_dim is not None
        latent = llm.kv_lora_rank + llm.qk_rope_head_dim
        uncompressed = llm.num_heads * (llm.qk_nope_head_dim + llm.qk_rope_head_dim + llm.v_head_dim)
        notes.append(
            f"Multi-head latent attention: the KV cache holds {latent} elements per token and layer "
            f"(kv_lora_rank {llm.kv_lora_rank} + rope {llm.qk_rope_head_dim}) instead of {uncompressed} for "
            f"{llm.num_heads} uncompressed heads (keys {llm.qk_nope_head_dim + llm.qk_rope_head_dim}, values "
            f"{llm.v_head_dim}), replicated on every tensor-parallel rank; decode attends over the latent with "
            "absorbed weights (score FLOP per token ~ heads x (kv_lora_rank + rope), values ~ heads x kv_lora_rank)."
        )
    return notes


def verdict(r: InferenceResolved, rows: list[Row]) -> str:
    """One sentence: this system against the comparison GPU at this batch, with what fits."""
    by_label = {str(row[0]): row for row in rows}
    mine = by_label[SYSTEM_LABELS[r.system]]
    gpu = by_label[SYSTEM_LABELS["gpu_only"]]
    ratio = float(mine[2]) / float(gpu[2])  # type: ignore[arg-type]
    n_devices = r.tensor_parallel * r.pipeline_parallel
    word = "beats" if ratio > 1.0 else "does not beat"
    fit = "" if mine[5] else f" (but {r.accelerator.id} does not fit this batch)"
    gpu_fit = "" if gpu[5] else f" ({gpu[1]} does not fit this batch)"
    return (
        f"At batch {r.batch_size:.0f} on {n_devices:.0f} devices (TP{r.tensor_parallel:.0f} "
        f"PP{r.pipeline_parallel:.0f}), {SYSTEM_LABELS[r.system]} on {mine[1]} "
        f"{word} GPU-only on {gpu[1]}: {float(mine[2]):,.0f} vs {float(gpu[2]):,.0f} tokens/s "  # type: ignore[arg-type]
        f"({ratio:.2f}x){fit}{gpu_fit}."
    )


@dataclass(frozen=True)
class Interleaving:
    """NeuPIMs throughput over BATCH_GRID with an even split and with none, and the first batch
    of the grid where the even split wins (None: never)."""

    even_split: list[float]
    no_split: list[float]
    crossover_batch: float | None


def interleaving(runner: Runner, systems: dict[str, AcceleratorSpec]) -> Interleaving | None:
    """Sub-batch interleaving on and off over the batch grid; None when NeuPIMs cannot run here."""
    if "neupims" not in systems:
        return None
    batches = np.asarray(BATCH_GRID, dtype=np.float64)
    # The even split and none are two of the split candidates NeuPIMs searches over the grid (the comparison's
    # call when the scenario leaves the split to the search: `Runner` keeps it), each element as a call with
    # that split alone gives it.
    searched = runner.run("neupims", systems["neupims"], batch=batches, search_split=True)
    by_split = searched.throughput_by_split_tokens_per_s
    assert by_split is not None
    candidates = list(SPLIT_CANDIDATES)
    throughput = np.broadcast_to(np.asarray(by_split), (len(candidates), batches.size))
    on_t, off_t = throughput[candidates.index(0.5)], throughput[candidates.index(0.0)]
    wins = np.nonzero(on_t > off_t)[0]
    crossover = float(BATCH_GRID[int(wins[0])]) if wins.size else None
    return Interleaving([float(v) for v in on_t], [float(v) for v in off_t], crossover)


def crossover_note(crossover_batch: float | None) -> str:
    if crossover_batch is None:
        return f"Sub-batch interleaving (even split) never beats no interleaving up to batch {BATCH_GRID[-1]}."
    return (
        f"Sub-batch interleaving (even split) first beats no interleaving at batch {crossover_batch:.0f} "
        f"(the public NeuPIMs simulator turns it on at batch >= 256)."
    )


def interleaving_table(study: Interleaving) -> Table:
    return Table(
        key="interleaving",
        title="NeuPIMs: sub-batch interleaving (even split) vs none, by batch",
        columns=[
            Column(key="batch", label="batch", unit="requests"),
            Column(key="interleaved", label="interleaved (even split)", unit="tokens/s"),
            Column(key="plain", label="no interleaving", unit="tokens/s"),
            Column(key="gain", label="interleaved / none", unit="x"),
        ],
        rows=[[b, on, off, on / off] for b, on, off in zip(BATCH_GRID, study.even_split, study.no_split, strict=True)],
    )


#: The bound shown for an op with work but no time of its own: it runs inside another kernel (softmax in a
#: fused attention kernel), so it has no achieved rate to show.
FUSED_BOUND = "fused into another kernel"


def inside_another_kernel(flop: float, bytes_moved: float, time_s: float) -> bool:
    """Whether an op does work yet costs no time of its own (the stack prices it inside another kernel)."""
    return time_s <= 0.0 and (flop > 0.0 or bytes_moved > 0.0)


def op_table(r: InferenceResolved, result: InferenceResult) -> Table:
    """FLOP, bytes, time and bound of every op of one decode layer."""
    rows: list[Row] = []
    for name in result.decode_ops:  # OP_NAMES and the ops a deployment or stack adds
        cost, priced = result.decode_op_costs[name], result.decode_ops[name]
        repeats = float(cost.repeats)  # two micro-batches under two-batch overlap: the counts are one's
        flop, moved = repeats * float(cost.flop), repeats * float(cost.bytes_moved)
        unit = op_unit(r.system, name)
        rows.append(
            [
                name,
                unit,
                flop,
                moved,
                repeats * float(cost.link_bytes),
                flop / moved if moved > 0 else None,
                float(priced.time_s) * 1e6 if unit != "pim" else None,
                (
                    "PIM (see PIM table)"
                    if unit == "pim"
                    else FUSED_BOUND
                    if inside_another_kernel(flop, moved, float(priced.time_s))
                    else BOUND_NAMES[int(priced.bound)]
                ),
            ]
        )
    return Table(
        key="ops",
        title="Decode layer, per op and per rank (whole batch)",
        columns=[
            Column(key="op", label="op"),
            Column(key="unit", label="unit"),
            Column(key="flop", label="FLOP", unit="FLOP"),
            Column(key="bytes", label="memory traffic", unit="bytes"),
            Column(key="link_bytes", label="link traffic per rank", unit="bytes"),
            Column(key="intensity", label="arithmetic intensity", unit="FLOP/byte"),
            Column(key="time", label="time on the matrix/vector unit or link", unit="us"),
            Column(key="bound", label="bound by"),
        ],
        rows=rows,
    )


def pim_table(m: MemorySpec) -> Table:
    """The memory preset's headline PIM numbers (dse.engines.pim.pim_numbers)."""
    numbers = pim_numbers(m)
    external, internal = numbers.external_bandwidth_bytes_per_s, numbers.internal_bandwidth_bytes_per_s
    rows: list[Row] = [
        ["external bandwidth", float(external), "bytes/s"],
        ["PIM peak internal bandwidth", float(internal), "bytes/s"],
        ["internal / external", float(internal / external), "x"],
        ["PIM peak compute", float(numbers.peak_flops_per_s), "FLOP/s"],
        ["GEMV tile", float(numbers.gemv_tile_cycles), "cycles"],
        ["refresh share of time (tRFC/tREFI)", m.t_rfc_cycles / m.t_refi_cycles, ""],
    ]
    return quantity_table("pim", f"PIM numbers derived from {m.id}", rows)


def quantity_table(key: str, title: str, rows: list[Row]) -> Table:
    """A table of (quantity, value, unit) rows."""
    return Table(
        key=key,
        title=title,
        columns=[
            Column(key="what", label="quantity"),
            Column(key="value", label="value"),
            Column(key="unit", label="unit"),
        ],
        rows=rows,
    )


@dataclass(frozen=True)
class DecodeSplit:
    """Where one decode layer's time goes: per op (with the unit that runs it) and per unit."""

    names: list[str]
    times_s: list[float]
    units: list[str]
    busy_s: dict[str, float]


def decode_split(r: InferenceResolved, result: InferenceResult) -> DecodeSplit:
    """Per-op times; on PIM systems score and context share the PIM GEMV time equally."""
    names = list(result.decode_ops)  # OP_NAMES and the ops a deployment or stack adds
    times = [float(result.decode_ops[n].time_s) for n in names]
    units = [op_unit(r.system, n) for n in names]
    if r.system in PIM_SYSTEMS:
        pim_share = float(result.pim_attention_time_s) / 2.0  # score and context GEMVs
        times = [pim_share if u == "pim" else t for t, u in zip(times, units, strict=True)]
    busy: dict[str, float] = {}
    for t, u in zip(times, units, strict=True):
        busy[u] = busy.get(u, 0.0) + t
    return DecodeSplit(names=names, times_s=times, units=units, busy_s=busy)


@dataclass(frozen=True)
class RooflinePoints:
    """The ops that run on the matrix/vector units, as (intensity, achieved FLOP/s) points; `not_drawn`: the ops a
    log-log roofline cannot place, with why (no FLOPs: a KV-cache write; no time of its own: priced inside
    another kernel)."""

    names: list[str]
    intensity_flop_per_byte: list[float]
    achieved_flops_per_s: list[float]
    not_drawn: dict[str, str]


def roofline_points(result: InferenceResult, split: DecodeSplit) -> RooflinePoints:
    costs = result.decode_op_costs
    times = dict(zip(split.names, split.times_s, strict=True))
    not_drawn: dict[str, str] = {}
    names: list[str] = []
    for name, unit in zip(split.names, split.units, strict=True):
        flop, moved = float(costs[name].flop), float(costs[name].bytes_moved)
        if unit == "link":
            continue
        if flop <= 0.0:
            not_drawn[name] = "no FLOPs"
        elif inside_another_kernel(flop, moved, times[name]):
            not_drawn[name] = "inside another kernel"
        else:
            names.append(name)
    return RooflinePoints(
        names=names,
        intensity_flop_per_byte=[float(costs[n].flop) / max(float(costs[n].bytes_moved), 1.0) for n in names],
        achieved_flops_per_s=[float(costs[n].flop) / max(times[n], 1e-15) for n in names],
        not_drawn=not_drawn,
    )


@dataclass(frozen=True)
class MoEOverBatch:
    """A mixture-of-experts model's decode step over BATCH_GRID: the routed experts touched per MoE layer
    and the expert weights read per device, beside all the experts and this scenario's batch."""

    batches: list[float]
    experts_touched: list[float]
    expert_bytes_read: list[float]
    expert_bytes_stored: float
    num_experts: float
    experts_per_token: float
    batch: float


def moe_over_batch(r: InferenceResolved) -> MoEOverBatch | None:
    """The experts a decode step touches at every batch of the grid (one vectorised call); None if dense."""
    step = moe_step(r, np.asarray(BATCH_GRID, dtype=np.float64))
    if step is None:
        return None
    return MoEOverBatch(
        batches=[float(b) for b in BATCH_GRID],
        experts_touched=[float(v) for v in np.asarray(step.experts_touched)],
        expert_bytes_read=[float(v) for v in np.asarray(step.expert_bytes_read_per_device)],
        expert_bytes_stored=float(np.asarray(step.expert_bytes_stored_per_device)),
        num_experts=float(r.model.num_experts),
        experts_per_token=float(r.model.experts_per_token),
        batch=float(r.batch_size),
    )


def moe_table(r: InferenceResolved) -> Table | None:
    """One decode step of a mixture-of-experts model: experts touched, expert weights read against stored,
    activated against total parameters, and which unit runs the experts (None for a dense model)."""
    step = moe_step(r)
    if step is None:
        return None
    llm = r.model
    touched = float(np.asarray(step.experts_touched))
    read, stored = float(np.asarray(step.expert_bytes_read_per_device)), float(step.expert_bytes_stored_per_device)
    activated, total = float(np.asarray(step.activated_parameters)), float(np.asarray(step.total_parameters))
    tokens = r.attention_data_parallel * r.batch_size  # every data-parallel attention rank's tokens
    prefill = float(expected_distinct_experts(llm.num_experts, llm.experts_per_token, tokens * r.prompt_tokens))
    units: dict[str, list[str]] = {}
    for name in OP_NAMES:
        units.setdefault(op_unit(r.system, name), []).append(name)
    expert_unit = op_unit(r.system, "ffn_up")
    rows: list[Row] = [
        ["routed experts per MoE layer (E)", float(llm.num_experts), "experts"],
        ["routed experts per token (k)", float(llm.experts_per_token), "experts"],
        ["shared experts per MoE layer (S)", float(llm.num_shared_experts), "experts"],
        ["MoE layers", float(llm.moe_layers), f"of {llm.num_layers} layers"],
        [
            f"routed experts touched per decode step (batch {r.batch_size:.0f})"
            if r.attention_data_parallel == 1
            else f"routed experts touched per decode step ({tokens:.0f} tokens of the DP ranks)",
            touched,
            "experts",
        ],
        ["share of the routed experts touched", touched / float(llm.num_experts), ""],
        [f"routed experts touched by the prefill ({tokens * r.prompt_tokens:.0f} tokens)", prefill, "experts"],
        ["expert weights read per decode step, per device", read, "bytes"],
        ["expert weights stored (all experts), per device", stored, "bytes"],
        ["activated parameters per token", activated, "params"],
        ["parameters stored (every expert)", total, "params"],
        ["activated / stored", activated / total, ""],
        ["router and expert FFNs run on", expert_unit.upper(), ""],
    ]
    if "pim" in units:
        rows.append(["on the PIM units (moved to PIM)", ", ".join(units["pim"]), "ops"])
    return quantity_table("moe", f"Mixture of experts: one decode step of {llm.id}", rows)
