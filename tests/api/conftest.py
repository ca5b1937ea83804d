"""A kind that answers in every typed word (a yes/no metric, published comparisons, links, records)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from tests.support.toy_kind import ToyKind, ToyResolved

from dse.scenarios.base import (
    EvaluationResult,
    MetricSpec,
    PublishedComparison,
    PublishedFigure,
    ScenarioLink,
    Tolerance,
)
from dse.scenarios.documents import document_model
from dse.scenarios.registry import KINDS, register

HOSTILE = "<script>alert(1)</script></script><img src=x onerror=alert(2)>"


class TypedKind(ToyKind):
    kind = "typed_toy"
    title = "Typed toy (tests only)"
    engine_version = "typed-toy-1"
    metric_specs: ClassVar[dict[str, MetricSpec]] = {
        **ToyKind.metric_specs,
        "fits": MetricSpec(label="Fits in 16 GB", unit="", formula="N * w <= 16 GB", boolean=True),
    }

    def evaluate(self, resolved: ToyResolved) -> EvaluationResult:
        values = self.compute(resolved)
        values["fits"] = values["weight_bytes"] <= 16e9
        base = super().evaluate(resolved)
        link = {"schema_version": 1, "kind": "toy", "name": f"{HOSTILE} as a toy", "inputs": {"batch_size": 4}}
        return base.model_copy(
            update={
                "kind": self.kind,
                "engine_version": self.engine_version,
                "metrics": self.metrics(values, terms={"B": resolved.batch_size, "w": resolved.bytes_per_param}),
                "published": [
                    PublishedComparison.of(
                        quantity="GPT-3 7B weights (fp16)",
                        published=13.3e9,
                        engine=float(values["weight_bytes"]),
                        unit="B",
                        tolerance=Tolerance.within(0.05),
                        source="Brown et al. 2020, Table 2.1",
                    ),
                    PublishedComparison.of(
                        quantity=f"batch size used by {HOSTILE}",
                        published=None,
                        published_text="32 sequences",
                        engine=float(resolved.batch_size),
                        source="a paper",
                        role="context",
                    ),
                ],
                "links": [ScenarioLink(label=f"open {HOSTILE}", document=link, note="the same model, batch 4")],
            }
        )

    def examples(self) -> list[dict[str, Any]]:
        return [{"schema_version": 1, "kind": self.kind, "name": "Typed toy", "inputs": {"batch_size": 8}}]

    def published_figures(self) -> list[PublishedFigure]:
        def weights(_catalog: Any) -> float:
            return 2 * 6_658_404_352

        return [
            PublishedFigure(
                key="weights",
                quantity="GPT-3 7B weights (fp16)",
                published=13.3e9,
                unit="B",
                source="Brown et al. 2020, Table 2.1",
                tolerance=Tolerance.within(0.05),
                engine=weights,
            ),
            PublishedFigure(
                key="weights_missed",
                quantity="GPT-3 7B weights, a figure the engine misses",
                published=10e9,
                unit="B",
                source="made up",
                tolerance=Tolerance.within(0.01),
                engine=weights,
                known_miss="counts embeddings the paper leaves out",
            ),
        ]


TYPED = TypedKind()


@pytest.fixture
def typed_kind(toy_kind):
    register(TYPED)
    document_model.cache_clear()
    yield TYPED
    KINDS.pop(TYPED.kind, None)
    document_model.cache_clear()


@pytest.fixture
def typed_client(typed_kind, make_client):
    return make_client()
