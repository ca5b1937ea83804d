"""Scenario kind "serving": an LLM server under load (continuous batching, paged KV cache, SLOs).

Answers: at a given arrival rate, what TTFT/TPOT/latency percentiles, throughput and goodput a deployment
reaches, how full its KV cache runs, the largest rate meeting the SLOs and the fewest replicas for the
rate, and the cost and energy per token; what a draft model (speculative decoding) buys, and whether
splitting prefill and decode over two pools beats co-located serving on the same devices. Engine:
dse.engines.serving (iteration-level simulation priced by the inference kind's per-op model).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from dse.catalog import Catalog
from dse.scenarios.base import (
    Column,
    EvaluationResult,
    MetricSpec,
    PublishedFigure,
    ScenarioKind,
    Table,
    Work,
    grid_points,
)
from dse.scenarios.kinds.serving import charts, studies
from dse.scenarios.kinds.serving.examples import EXAMPLES
from dse.scenarios.kinds.serving.inputs import ServingInputs, ServingResolved, resolve
from dse.scenarios.kinds.serving.metrics import METRICS, compute, formula_terms, point_values
from dse.scenarios.kinds.serving.published import PUBLISHED


def _search_table(outcome: studies.Outcome, r: ServingResolved) -> Table:
    q = f"p{r.slo_percentile:g}"
    return Table(
        key="rate_search",
        title="The rate search's simulations",
        columns=[
            Column(key="rate", label="Arrival rate", unit="requests/s"),
            Column(key="ttft", label=f"TTFT {q}", unit="s"),
            Column(key="tpot", label=f"TPOT {q}", unit="s"),
            Column(key="goodput", label="Goodput (deployment)", unit="requests/s"),
            Column(key="meets", label="Meets the SLOs"),
        ],
        rows=[
            [
                s.rate_per_s,
                s.ttft_at_slo_percentile_s,
                s.tpot_at_slo_percentile_s,
                s.goodput_requests_per_s * studies.replica_scale(r),
                s.meets_slo,
            ]
            for s in sorted(outcome.search.evaluations, key=lambda s: s.rate_per_s)
        ],
    )


def _comparison_table(r: ServingResolved, outcome: studies.Outcome, colocated: studies.Outcome) -> Table:
    """Disaggregated against co-located on the same devices: latency at the document's rate, goodput, and the
    largest rate meeting the SLOs (per device too)."""
    q = f"p{r.slo_percentile:g}"
    twin = studies.colocated_twin(r)

    def row(name: str, resolved: ServingResolved, o: studies.Outcome) -> list[Any]:
        s, n = o.summary, studies.devices(resolved)
        return [
            name,
            n,
            s.ttft_at_slo_percentile_s,
            s.tpot_at_slo_percentile_s,
            s.goodput_requests_per_s * studies.replica_scale(resolved),
            o.search.max_rate_per_s,
            o.search.max_rate_per_s / n,
        ]

    return Table(
        key="disaggregation",
        title="Disaggregated prefill/decode against co-located serving on the same devices",
        columns=[
            Column(key="deployment", label="Deployment"),
            Column(key="devices", label="Devices", unit="devices"),
            Column(key="ttft", label=f"TTFT {q}", unit="s"),
            Column(key="tpot", label=f"TPOT {q}", unit="s"),
            Column(key="goodput", label="Goodput at the rate", unit="requests/s"),
            Column(key="max_rate", label="Largest rate meeting the SLOs", unit="requests/s"),
            Column(key="max_rate_per_device", label="Per device", unit="requests/s"),
        ],
        rows=[
            row(
                f"disaggregated: {int(r.prefill_replicas)} x TP{int(r.prefill_tensor_parallel)} prefill + "
                f"{int(r.decode_replicas)} x TP{int(r.decode_tensor_parallel)} decode",
                r,
                outcome,
            ),
            row(f"co-located: {int(twin.replicas)} x TP{int(twin.tensor_parallel)}", twin, colocated),
        ],
    )


def _notes(r: ServingResolved, outcome: studies.Outcome, values: dict[str, Any]) -> list[str]:
    if r.disaggregated:
        link = r.kv_transfer_link
        first = (
            f"The whole stream simulated ({int(r.num_requests):,} requests at {outcome.summary.rate_per_s:.3g} "
            f"requests/s): {int(r.prefill_replicas)} prefill and {int(r.decode_replicas)} decode instances, each "
            f"request's KV cache sent over {link.name if link else 'the link'} (median "
            f"{values['kv_transfer_p50_s'] * 1e3:.3g} ms); compared with {int(studies.colocated_twin(r).replicas)} "
            f"co-located replicas of TP{int(r.tensor_parallel)} on the same devices."
        )
    else:
        first = (
            f"One replica simulated ({int(r.num_requests):,} requests at "
            f"{outcome.summary.rate_per_s / r.replicas:.3g} requests/s)"
            + (
                f"; the deployment's {int(r.replicas)} replicas share the load evenly at random."
                if r.replicas > 1
                else "."
            )
        )
    notes = [
        first,
        f"Largest arrival rate meeting p{r.slo_percentile:g} TTFT <= {r.ttft_slo_s:g} s and TPOT <= "
        f"{r.tpot_slo_s:g} s: {values['max_rate_meeting_slo_per_s']:.3g} requests/s "
        f"({len(outcome.search.evaluations)} simulations, each spanning at least {studies.SEARCH_WINDOW_S:g} s of "
        f"arrivals per replica, {studies.SEARCH_REQUESTS}+ requests, up to the document's count).",
        f"Price per device-hour {r.gpu_hour_usd:.2f} USD: {r.gpu_hour_source}.",
        f"Power per device {r.power_w:g} W: "
        + ("the document's." if r.power_w_given else f"the {r.accelerator.name}'s TDP ({r.accelerator.source})."),
    ]
    if r.draft_model is not None:
        notes.append(
            f"Speculative decoding with {r.draft_model.name}: {int(r.draft_tokens)} drafted tokens per step, each "
            f"accepted with probability {r.acceptance_rate:g}, yield {values['speculative_tokens_per_step']:.3g} "
            "tokens per step on average (every request advances by that expectation, rounded the same for all)."
        )
    if outcome.summary.finished_fraction < 1:
        notes.append("Some requests never ran: a prompt larger than the whole KV cache.")
    if outcome.memory.kv_capacity_blocks <= 0:
        notes.append("The weights leave no room for a KV cache on this device: raise tensor_parallel.")
    return notes


class ServingKind(ScenarioKind[ServingInputs, ServingResolved]):
    kind = "serving"
    title = "LLM serving under load (continuous batching, paged KV cache, SLOs)"
    description = (
        "An iteration-level simulation of a continuous-batching server (chunked prefill, paged KV cache with "
        "vLLM's preempting or TensorRT-LLM's no-evict admission, prefix caching) under Poisson, bursty or traced "
        "arrivals: latency percentiles, goodput, the largest rate meeting TTFT/TPOT SLOs, the replicas needed, and "
        "cost and energy per token; dense, MoE and latent-attention models (also as data-parallel attention + expert "
        "parallelism across nodes), speculative decoding with a draft model, and disaggregated prefill/decode pools "
        "compared with co-located serving on the same devices."
    )
    # 6: gate and up as two GEMMs where the stack says; MoE experts at its dtype; outputs with the next step
    # (vLLM 0.6.0); 5: host cost per iteration; 7: rope and KV-cache write kernels per layer (vLLM, SGLang stacks),
    # a completion inside a multi-step block seen at the next step (vLLM 0.6.0); 8: a request-length preset's own
    # prompt and output medians, where counted, set each part's spread (bench_serving's ShareGPT sample)
    engine_version = "serving-8"
    validation_dtype = "fp16"  # the published records price fp16 models (vLLM Table 1, Sarathi-Serve artifact)
    heavy = True
    validated_by = "inference"  # every iteration is priced by the inference kind's per-op model
    inputs_model = ServingInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = METRICS

    def resolve(self, inputs: ServingInputs, catalog: Catalog) -> ServingResolved:
        return resolve(inputs, catalog)

    def compute(self, resolved: ServingResolved) -> dict[str, Any]:
        return compute(resolved)

    def evaluate(self, resolved: ServingResolved) -> EvaluationResult:
        r = resolved
        outcome = studies.run(r)
        values = point_values(r, outcome)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            feasible=outcome.memory.kv_capacity_blocks > 0 and outcome.summary.finished_fraction == 1.0,
            metrics=self.metrics(values, formula_terms(r)),
            tables=[_search_table(outcome, r)]
            + ([_comparison_table(r, outcome, outcome.colocated)] if outcome.colocated is not None else []),
            charts=charts.charts(
                outcome.sim,
                outcome.search,
                capacity_blocks=outcome.memory.kv_capacity_blocks,
                ttft_slo_s=r.ttft_slo_s,
                tpot_slo_s=r.tpot_slo_s,
                percentile=r.slo_percentile,
                colocated=outcome.colocated.search if outcome.colocated is not None else None,
            ),
            notes=_notes(r, outcome, values),
        )

    def work(self, resolved: ServingResolved) -> Work:
        """Simulated requests, once for the scenario and once per step of the largest-rate search (heavy work)."""
        runs = 2 + resolved.rate_search_steps
        if resolved.disaggregated:  # every request through two instances, and the co-located twin's runs
            runs *= 3
        return Work(
            cells=float(grid_points(resolved)) * resolved.num_requests * runs * 1e3,
            peak_bytes=float(resolved.num_requests) * 1e3,
            driver="num_requests",
            heavy=True,
        )

    def examples(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(EXAMPLES))

    def published_figures(self) -> Sequence[PublishedFigure]:
        return PUBLISHED


KIND = ServingKind()
