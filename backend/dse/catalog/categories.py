"""Which spec type each folder of models_db/ holds. One line per category."""

from __future__ import annotations

from dse.specs.diffusion import DiffusionPipelineSpec
from dse.specs.hardware import AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.memory import MemorySpec, RequestLengthSpec
from dse.specs.network import InterconnectSpec, SSDSpec
from dse.specs.stacks import SoftwareStackSpec
from dse.specs.workloads import GraphDatasetSpec, RLWorkloadSpec

CATEGORY_SPECS: dict[str, type] = {
    "llms": LLMSpec,
    "accelerators": AcceleratorSpec,
    "memories": MemorySpec,
    "request_lengths": RequestLengthSpec,
    "interconnects": InterconnectSpec,
    "ssds": SSDSpec,
    "rl_workloads": RLWorkloadSpec,
    "graph_datasets": GraphDatasetSpec,
    "diffusion": DiffusionPipelineSpec,
    "stacks": SoftwareStackSpec,
}
