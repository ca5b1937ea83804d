"""Which spec type each folder of models_db/ holds. One line per category."""

from __future__ import annotations

from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import AcceleratorSpec
from dse.specs.llm import LLMSpec

CATEGORY_SPECS: dict[str, type] = {
    "llms": LLMSpec,
    "accelerators": AcceleratorSpec,
    "diffusion": DiffusionPipelineSpec,
}
