"""Batch-limited training workloads: PPO runs on simulators (CaRL) and dynamic-graph datasets (PRES).

Plain frozen dataclasses; every numeric field carries its unit in its name (counts are plain
numbers). `field_sources` cites each value or says how it was derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import NonNegativeFloat, PositiveFloat, PositiveInt

LayerType = Literal["conv2d", "linear", "layernorm"]


@dataclass(frozen=True)
class PolicyLayerSpec:
    """One layer of a policy network, enough to count its parameters, FLOP and activations.

    conv2d: `inputs`/`outputs` are channels, square `kernel`, `stride`, no padding, square input of
    `input_side` pixels. linear: `inputs`/`outputs` are features. layernorm: `inputs` is the number
    of normalised elements (its affine weight and bias each have that many), `outputs` equals it.
    """

    layer_type: LayerType
    inputs: PositiveInt
    outputs: PositiveInt
    kernel: PositiveInt = 1
    stride: PositiveInt = 1
    input_side: PositiveInt = 1


@dataclass(frozen=True)
class RLWorkloadSpec:
    """A synchronous PPO run (DD-PPO style): rollout on simulators, then epochs of minibatch updates."""

    id: str
    name: str
    source: str
    simulator: str
    num_gpus: PositiveInt
    envs_per_gpu: PositiveInt
    rollout_steps_per_env: PositiveInt
    #: Minibatch summed over all GPUs (CaRL's total_minibatch_size).
    minibatch_samples: PositiveInt
    update_epochs: PositiveInt
    total_samples_target: PositiveFloat
    #: Wall time of one simulator step of one environment when it has a core to itself.
    env_step_time_s: PositiveFloat
    cpu_cores: PositiveInt
    #: Cores one environment keeps busy while it steps (server + client share).
    cpu_cores_per_env: PositiveFloat
    #: Observation bytes per sample copied host -> accelerator for batched inference.
    observation_bytes_per_sample: PositiveFloat
    #: dtype of the policy's training and inference math (CaRL: fp32, TF32 off).
    compute_dtype: Literal["fp32", "tf32", "fp16", "bf16"]
    policy_layers: tuple[PolicyLayerSpec, ...]
    #: Published wall time of the whole run, where one is known (0 when none).
    published_wall_time_s: NonNegativeFloat = 0.0
    published_wall_time_source: str = ""
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)

    @property
    def batch_samples(self) -> int:
        """Samples per PPO iteration: every environment's rollout."""
        return self.num_gpus * self.envs_per_gpu * self.rollout_steps_per_env


@dataclass(frozen=True)
class DegreeSideSpec:
    """How the events' endpoints spread over one side of the graph (users, items, or all nodes).

    `zipf`: the node of popularity rank r holds a share of the side's endpoints ∝ r^-exponent
    (a power-law degree distribution with exponent 1 + 1/exponent, cut off by the node count).
    `histogram`: `histogram_degrees[i]` is the degree of `histogram_node_counts[i]` nodes.
    """

    nodes: PositiveInt
    #: The law the endpoints follow: `zipf` or `histogram`.
    law: Literal["zipf", "histogram"]
    exponent: NonNegativeFloat = 1.0
    histogram_degrees: tuple[PositiveFloat, ...] = ()
    histogram_node_counts: tuple[NonNegativeFloat, ...] = ()


@dataclass(frozen=True)
class GraphDatasetSpec:
    """A continuous-time dynamic graph: its size, its event endpoints' distribution, its edge features."""

    id: str
    name: str
    source: str
    nodes: PositiveInt
    events: PositiveInt
    #: Bipartite: every event joins a `source_side` node to a `destination_side` node.
    #: Otherwise both endpoints come from `source_side` (all nodes).
    bipartite: bool
    source_side: DegreeSideSpec
    destination_side: DegreeSideSpec | None = None
    edge_feature_dim: int = 0
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)
