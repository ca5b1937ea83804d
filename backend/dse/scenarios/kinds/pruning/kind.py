"""Scenario kind `pruning`: prompt-routed pruned diffusion models under a compute budget (APTP).

From a diffusion pipeline preset, K architecture codes (keep fractions of channels, heads and
FFN width, uniform or per stage), a prompt mix and a budget, it counts each code's resource
ratio R_k, routes the prompt mix onto the codes by entropic optimal transport, checks the
budget, and prices serving on an accelerator for static, dynamic and APTP (per-code batches).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dse.catalog import Catalog
from dse.scenarios.base import (
    Chart,
    EvaluationResult,
    Metric,
    MetricSpec,
    PublishedFigure,
    ScenarioKind,
    Table,
)
from dse.scenarios.kinds.pruning import charts, published, studies
from dse.scenarios.kinds.pruning.examples import EXAMPLES
from dse.scenarios.kinds.pruning.inputs import PruningInputs, PruningResolved, resolve
from dse.scenarios.kinds.pruning.metrics import (
    METRICS,
    Core,
    at_batches,
    compute,
    core,
    counted,
    values_of,
)


class PruningKind(ScenarioKind[PruningInputs, PruningResolved]):
    kind: ClassVar[str] = "pruning"
    title: ClassVar[str] = "Prompt-routed pruning of diffusion models (APTP)"
    description: ClassVar[str] = (
        "UNet parameters and MACs per block, architecture codes and their resource ratios, routing of a prompt "
        "mix onto codes under a compute budget (Sinkhorn), and serving throughput for static, dynamic and "
        "prompt-routed (APTP) pruning."
    )
    # 5: the denoising loop's host-serialized ops; eager channels-last copies back to the image; timestep embedding
    # 4: fp32 convolutions on TF32, attention on 3xTF32 (PyTorch defaults)
    engine_version: ClassVar[str] = "pruning-5"
    validation_dtype = "fp32"  # APTP Table 1 latencies are priced in fp32 (published.py)
    inputs_model: ClassVar[type[PruningInputs]] = PruningInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = METRICS
    #: Measured on a sweep of the first example over 256 batch sizes: ~1 ms CPU and ~245 kB peak per point
    #: (per-block MAC tables, the transport and the op-by-op serving arrays of every point).
    cells_per_point = 2e6
    bytes_per_point = 300_000.0

    def resolve(self, inputs: PruningInputs, catalog: Catalog) -> PruningResolved:
        return resolve(inputs, catalog)

    def compute(self, resolved: PruningResolved) -> dict[str, Any]:
        return compute(resolved)

    def is_medium(self, inputs: PruningInputs) -> bool:
        # an evaluation routes prompts (Sinkhorn: ~10 ms for a prompt mix and codes not seen lately) and prices
        # serving over the charts' batches
        return True

    def examples(self) -> list[dict[str, Any]]:
        return copy.deepcopy(EXAMPLES)

    def published_figures(self) -> Sequence[PublishedFigure]:
        return published.PUBLISHED

    # -- one point in full: named steps -------------------------------------------------------------

    def evaluate(self, resolved: PruningResolved) -> EvaluationResult:
        r = resolved
        # Counting and routing do not depend on the batch: computed once for the metrics' batch and the charts'.
        # Serving is priced once, at the metrics' batch followed by the charts' batches (one engine call).
        batches = core(r, np.asarray((r.batch_size, *r.figure_batch_sizes), dtype=np.float64), counted(r))
        values = values_of(r, at_batches(batches, 0))
        grid = at_batches(batches, slice(1, None))
        tables, chart_list = self._tables_and_charts(r, grid)
        mean_ratio = float(grid.routing.mean_ratio)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=bool(grid.routing.budget_met),
            metrics=self._metrics(r, values, grid),
            tables=tables,
            charts=chart_list,
            notes=self._notes(r, values, grid),
            published=published.validation_rows(r) + published.context_rows(r, mean_ratio),
        )

    def _metrics(self, r: PruningResolved, values: dict[str, Any], point: Core) -> list[Metric]:
        """Every declared metric with the terms its formula used."""
        serving_terms: dict[str, float | str] = {"B": r.batch_size, "N": r.denoising_steps, "g": r.guidance_copies}
        return self.metrics(
            values,
            per_metric_terms={
                "mean_resource_ratio": {"budget": r.budget_ratio, "K": float(len(r.code_names))},
                "budget_met": {"R_bar": float(point.routing.mean_ratio), "budget": r.budget_ratio},
                "aptp_latency_s": serving_terms,
                "static_latency_s": serving_terms,
                "dynamic_latency_s": serving_terms,
                "unet_macs_per_step": {
                    "latent_side": float(point.latent_side),
                    "basis": "with attention" if r.include_attention_matmuls else "conv+linear",
                },
            },
        )

    def _tables_and_charts(self, r: PruningResolved, grid: Core) -> tuple[list[Table], list[Chart]]:
        """Per block, per code, routing and throughput: each a table and a chart of the same numbers."""
        full = studies.full_counts(grid)
        per_code = studies.code_counts(r, grid)
        labels = studies.code_labels(r, grid)
        shares = studies.routing_shares(r, grid)
        tput = studies.throughput_by_batch(r, grid)
        tables = [
            studies.block_table(grid, full),
            studies.code_table(r, grid, per_code),
            studies.routing_table(r, shares),
            studies.throughput_table(r, tput),
        ]
        chart_list = [
            charts.macs_per_block_chart(grid.table, full),
            charts.macs_per_code_chart(labels, per_code),
            charts.routing_chart(r.category_names, labels, shares),
            charts.throughput_chart(r.figure_batch_sizes, tput),
        ]
        return tables, chart_list

    def _notes(self, r: PruningResolved, values: dict[str, Any], point: Core) -> list[str]:
        """The answer in words (first), then how the numbers were made."""

        def one(key: str) -> float:
            return float(np.asarray(values[key]).reshape(-1)[0])

        mean_ratio = float(point.routing.mean_ratio)
        aptp_rate, aptp_s = one("aptp_images_per_s"), one("aptp_latency_s")
        notes = [
            f"At batch {r.batch_size:g} and budget {r.budget_ratio:g} (mean R {mean_ratio:.3f} over "
            f"{len(r.code_names)} codes), APTP serves {aptp_rate:.2f} images/s with a batch latency of {aptp_s:.2f} s; "
            f"unpruned {one('full_images_per_s'):.2f} images/s, {one('full_latency_s'):.2f} s "
            f"({one('full_latency_s') / aptp_s:.2f}x APTP's latency); static pruning at the same mean R "
            f"{one('static_images_per_s'):.2f} images/s, {one('static_latency_s'):.2f} s "
            f"({one('static_latency_s') / aptp_s:.2f}x APTP's); dynamic per-prompt pruning (batch 1) "
            f"{one('dynamic_images_per_s'):.2f} images/s, {one('dynamic_latency_s'):.2f} s "
            f"({one('dynamic_latency_s') / aptp_s:.2f}x APTP's).",
            "R_k = UNet MACs per step of code k / the full UNet's, at this resolution"
            + (
                " including the attention matmuls (as APTP's op counter)."
                if r.include_attention_matmuls
                else " (conv + linear)."
            ),
            "Routing: entropic optimal transport with cost (R_k - q_i)^2; column marginals are the code capacities, "
            "so the mean R is fixed by the capacities and the plan decides who goes where.",
            "Static pruning is priced with the one uniform keep fraction whose R equals APTP's mean R (same budget).",
            "Serving time is priced op by op: convolutions as implicit GEMMs (M = batch x positions, N = output "
            "channels, K = input channels x taps) and linears on the stack's fitted GEMM model, attention fused "
            "or unfused as the stack runs it, and every GroupNorm, SiLU, residual add, concatenation and "
            "up-sampling copy as a memory-bound pass with the stack's launch cost (fused where the stack fuses); "
            f"{point.priced.note()}.",
            "APTP splits a batch of B prompts by code: code k is drawn with probability d_k = 1 - (1 - s_k)^B "
            "and then runs B*s_k/d_k prompts on average (so at B = 1 APTP costs what dynamic pruning does).",
            "APTP's reported latencies (arXiv 2406.12042, Table 1, as quoted in ALTER's Table 1: 768 px, 25 "
            "steps, batch 1, A100) are compared in the published figures as latency ratios to SD 2.1, priced in "
            "fp32; the absolute latency is not matched (see limitations).",
        ]
        if not bool(point.routing.budget_met):
            notes.append(f"Budget NOT met: mean R {mean_ratio:.3f} > budget {r.budget_ratio:.3f}.")
        return notes


KIND = PruningKind()
