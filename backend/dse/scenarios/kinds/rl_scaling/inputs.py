"""Inputs of `rl_scaling`: a PPO run (preset or inline) on an accelerator, and the resolved tree the engine reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import Field, ValidationError

from dse.catalog import Catalog
from dse.engines.rl_scaling import PolicyShape, policy_shape
from dse.scenarios.base import InputError, StrictModel
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import MAX_BANDWIDTH_GB_PER_S, MAX_COUNT, MAX_LATENCY_US, MIN_BANDWIDTH_GB_PER_S
from dse.specs.hardware import AcceleratorSpec
from dse.specs.network import InterconnectSpec
from dse.specs.workloads import PolicyLayerSpec, RLWorkloadSpec

GB = 1e9

#: Sources of the link and launch defaults (numbers in the inputs model below).
LINK_SOURCE = "NVIDIA A100 datasheet: third-generation NVLink 600 GB/s per GPU, i.e. 300 GB/s each direction"
LINK_LATENCY_SOURCE = "NCCL src/graph/tuning.cc: hwLat[NVLINK][Ring][Simple] = 5.7 µs per ring step"
HOST_LINK_SOURCE = "PCI-SIG PCIe 4.0: x16 = 31.5 GB/s per direction (the A100's host link)"
LAUNCH_SOURCE = "default: the accelerator preset's calibrated kernel_overhead_s (A100: 17 µs; 0 where uncalibrated)"


class RLScalingInputs(StrictModel):
    """A PPO run (preset or inline) on an accelerator; any run setting may be overridden."""

    workload: str | RLWorkloadSpec = Field(
        "carl-carla", description="rl_workloads preset id or an inline RLWorkloadSpec."
    )
    accelerator: str | AcceleratorSpec = Field("a100-80gb", description="accelerators preset id or an inline spec.")
    num_gpus: int | None = Field(None, ge=1, le=4096, description="Data-parallel learners (GPUs).")
    envs_per_gpu: int | None = Field(None, ge=1, le=4096, description="Simulator environments per GPU.")
    rollout_steps_per_env: int | None = Field(None, ge=1, le=1_000_000, description="Rollout steps per environment.")
    minibatch_samples: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="Minibatch summed over all GPUs (samples)."
    )
    update_epochs: int | None = Field(None, ge=1, le=1000, description="Passes over each batch.")
    total_samples_target: float | None = Field(None, ge=1, le=1e15, description="Samples to train on.")
    env_step_time_ms: float | None = Field(
        None, ge=1e-6, le=1e6, description="One environment step on an idle core, ms."
    )
    cpu_cores: int | None = Field(None, ge=1, le=100_000, description="CPU cores per node.")
    cpu_cores_per_env: float | None = Field(None, ge=1e-3, le=64, description="Cores one environment keeps busy.")
    gpus_per_node: int = Field(8, ge=1, le=64, description="GPUs per node (environments share that node's cores).")
    link: str | InterconnectSpec | None = Field(
        None, description="interconnects preset (or inline spec) for the all-reduce; replaces the two numbers below."
    )
    link_bandwidth_gb_per_s: float = Field(
        300.0,
        ge=MIN_BANDWIDTH_GB_PER_S,
        le=MAX_BANDWIDTH_GB_PER_S,
        description=f"All-reduce link, GB/s. {LINK_SOURCE}.",
    )
    link_latency_us: float = Field(
        5.7, ge=0, le=MAX_LATENCY_US, description=f"All-reduce per-step latency, µs. {LINK_LATENCY_SOURCE}."
    )
    host_link: str | InterconnectSpec | None = Field(
        None,
        description="interconnects preset (or inline spec) from host to GPU; replaces the number below.",
    )
    host_link_bandwidth_gb_per_s: float = Field(
        31.5,
        ge=MIN_BANDWIDTH_GB_PER_S,
        le=MAX_BANDWIDTH_GB_PER_S,
        description=f"Host -> GPU, GB/s. {HOST_LINK_SOURCE}.",
    )
    kernel_launch_us: float | None = Field(None, ge=0, le=1e5, description=f"Per-kernel cost, µs. {LAUNCH_SOURCE}.")


@dataclass(frozen=True)
class RLScalingResolved:
    """Everything the engine reads, in SI units; numeric leaves are sweepable."""

    workload_id: str
    workload_name: str
    policy_layers: tuple[PolicyLayerSpec, ...]
    compute_dtype: str
    accelerator: AcceleratorSpec
    num_gpus: int
    envs_per_gpu: int
    rollout_steps_per_env: int
    minibatch_samples: int
    update_epochs: int
    total_samples_target: float
    env_step_time_s: float
    cpu_cores: int
    cpu_cores_per_env: float
    gpus_per_node: int
    observation_bytes_per_sample: float
    kernel_launch_s: float
    host_link_bandwidth_bytes_per_s: float
    link_bandwidth_bytes_per_s: float
    link_latency_s: float
    #: (published wall time in s, its source); a tuple so sweeps leave it alone.
    published_wall_time: tuple[float, str] = (0.0, "")


@lru_cache(maxsize=64)
def shape_of(layers: tuple[PolicyLayerSpec, ...]) -> PolicyShape:
    """The policy's per-layer counts (cached: a sweep evaluates the same layers many times)."""
    return policy_shape(layers)


def _override(value: Any, default: Any) -> Any:
    return default if value is None else value


#: Largest observation per sample (1 GiB) and layer width/side (2^20) of an inline workload.
MAX_OBSERVATION_BYTES = 2.0**30
MAX_LAYER_SIZE = 2**20


def _check_workload(workload: RLWorkloadSpec) -> None:
    """An inline workload's run settings obey the same bounds as the overrides (InputError naming workload.*)."""
    run = {
        "num_gpus": workload.num_gpus,
        "envs_per_gpu": workload.envs_per_gpu,
        "rollout_steps_per_env": workload.rollout_steps_per_env,
        "minibatch_samples": workload.minibatch_samples,
        "update_epochs": workload.update_epochs,
        "total_samples_target": workload.total_samples_target,
        "env_step_time_ms": workload.env_step_time_s * 1e3,
        "cpu_cores": workload.cpu_cores,
        "cpu_cores_per_env": workload.cpu_cores_per_env,
    }
    try:
        RLScalingInputs.model_validate(run)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "workload"
        name = "env_step_time_s" if name == "env_step_time_ms" else name
        raise InputError(f"workload.{name}", f"{error['msg']} (in the workload's units)") from None
    if not 0 < workload.observation_bytes_per_sample <= MAX_OBSERVATION_BYTES:
        raise InputError("workload.observation_bytes_per_sample", f"must be between 1 and {MAX_OBSERVATION_BYTES:g}")
    for i, layer in enumerate(workload.policy_layers):
        for name in ("inputs", "outputs", "kernel", "stride", "input_side"):
            if getattr(layer, name) > MAX_LAYER_SIZE:
                raise InputError(f"workload.policy_layers[{i}].{name}", f"must be at most {MAX_LAYER_SIZE}")


def resolve(inputs: RLScalingInputs, catalog: Catalog) -> RLScalingResolved:
    """Presets looked up, overrides applied, SI units; cross-field rules raise InputError."""
    workload: RLWorkloadSpec = preset_or_inline(catalog, "rl_workloads", inputs.workload, "workload")
    _check_workload(workload)
    accelerator: AcceleratorSpec = preset_or_inline(catalog, "accelerators", inputs.accelerator, "accelerator")
    num_gpus = _override(inputs.num_gpus, workload.num_gpus)
    envs = _override(inputs.envs_per_gpu, workload.envs_per_gpu)
    steps = _override(inputs.rollout_steps_per_env, workload.rollout_steps_per_env)
    minibatch = _override(inputs.minibatch_samples, workload.minibatch_samples)
    batch = num_gpus * envs * steps
    if minibatch > batch:
        raise InputError("minibatch_samples", f"{minibatch} exceeds the batch of {batch} samples per iteration")
    if minibatch < num_gpus:
        raise InputError("minibatch_samples", f"{minibatch} leaves some of the {num_gpus} GPUs without a sample")
    if not workload.policy_layers:  # no network: zero time per iteration, infinite samples/s
        raise InputError("workload.policy_layers", "give at least one layer")
    try:
        shape_of(tuple(workload.policy_layers))
    except ValueError as exc:
        raise InputError("workload.policy_layers", str(exc)) from None
    env_step_s = workload.env_step_time_s if inputs.env_step_time_ms is None else inputs.env_step_time_ms * 1e-3
    link_bw, link_latency = inputs.link_bandwidth_gb_per_s * GB, inputs.link_latency_us * 1e-6
    if inputs.link is not None:
        link: InterconnectSpec = preset_or_inline(catalog, "interconnects", inputs.link, "link")
        link_bw, link_latency = link.bandwidth_per_direction_bytes_per_s, link.latency_s
    host_bw = inputs.host_link_bandwidth_gb_per_s * GB
    if inputs.host_link is not None:
        host: InterconnectSpec = preset_or_inline(catalog, "interconnects", inputs.host_link, "host_link")
        host_bw = host.bandwidth_per_direction_bytes_per_s
    return RLScalingResolved(
        workload_id=workload.id,
        workload_name=workload.name,
        policy_layers=tuple(workload.policy_layers),
        compute_dtype=workload.compute_dtype,
        accelerator=accelerator,
        num_gpus=num_gpus,
        envs_per_gpu=envs,
        rollout_steps_per_env=steps,
        minibatch_samples=minibatch,
        update_epochs=_override(inputs.update_epochs, workload.update_epochs),
        total_samples_target=float(_override(inputs.total_samples_target, workload.total_samples_target)),
        env_step_time_s=float(env_step_s),
        cpu_cores=_override(inputs.cpu_cores, workload.cpu_cores),
        cpu_cores_per_env=float(_override(inputs.cpu_cores_per_env, workload.cpu_cores_per_env)),
        gpus_per_node=inputs.gpus_per_node,
        observation_bytes_per_sample=float(workload.observation_bytes_per_sample),
        kernel_launch_s=(
            accelerator.kernel_overhead_s if inputs.kernel_launch_us is None else inputs.kernel_launch_us * 1e-6
        ),
        host_link_bandwidth_bytes_per_s=host_bw,
        link_bandwidth_bytes_per_s=link_bw,
        link_latency_s=link_latency,
        published_wall_time=(workload.published_wall_time_s, workload.published_wall_time_source),
    )
