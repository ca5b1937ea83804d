"""A minimal scenario kind for testing the plumbing (documents, sweeps, compare) independently of the engines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from dse.catalog import Catalog
from dse.engines.transformer import llm_parameter_breakdown
from dse.scenarios.base import Chart, EvaluationResult, InputError, MetricSpec, ScenarioKind, StrictModel
from dse.scenarios.presets import preset_or_inline
from dse.specs.llm import LLMSpec


class ToyInputs(StrictModel):
    model: str | LLMSpec = "gpt3-7b"
    batch_size: int = Field(8, gt=0, le=4096)
    bytes_per_param: float = Field(2.0, gt=0)


@dataclass(frozen=True)
class ToyResolved:
    model: LLMSpec
    batch_size: int
    bytes_per_param: float


class ToyKind(ScenarioKind[ToyInputs, ToyResolved]):
    kind = "toy"
    title = "Toy (tests only)"
    description = "Weight bytes of a model, for testing the plumbing."
    engine_version = "toy-1"
    inputs_model = ToyInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = {
        "weight_bytes": MetricSpec(label="Weights", unit="B", formula="N * w"),
        "bytes_per_request": MetricSpec(label="Weights per request", unit="B", formula="N * w / B"),
    }

    def resolve(self, inputs: ToyInputs, catalog: Catalog) -> ToyResolved:
        model = preset_or_inline(catalog, "llms", inputs.model, "model")
        if inputs.batch_size == 13:
            raise InputError("batch_size", "13 is unlucky")
        return ToyResolved(model=model, batch_size=inputs.batch_size, bytes_per_param=inputs.bytes_per_param)

    def compute(self, resolved: ToyResolved) -> dict[str, Any]:
        weights = llm_parameter_breakdown(resolved.model).total * resolved.bytes_per_param
        return {"weight_bytes": weights, "bytes_per_request": weights / resolved.batch_size}

    def evaluate(self, resolved: ToyResolved) -> EvaluationResult:
        values = self.compute(resolved)
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            metrics=[self.metric(k, v, B=resolved.batch_size, w=resolved.bytes_per_param) for k, v in values.items()],
            charts=[
                Chart(
                    key="bytes",
                    title="Bytes",
                    figure={
                        "data": [{"type": "bar", "x": list(values), "y": [float(v) for v in values.values()]}],
                        "layout": {"yaxis": {"title": {"text": "bytes"}}},
                    },
                )
            ],
        )

    def examples(self) -> list[dict[str, Any]]:
        return [{"schema_version": 1, "kind": "toy", "name": "Toy: GPT-3 7B weights", "inputs": {"batch_size": 8}}]


TOY = ToyKind()
