"""Scenario kind `rl_scaling`: synchronous PPO on many GPUs (CaRL), rollout vs update.

Answers: how many samples/s a DD-PPO run reaches, how many iterations and gradient steps its
sample target takes and how long, how busy the GPUs and CPUs are, and how all of it moves with
the minibatch size and the GPU count. Engine: dse.engines.rl_scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from dse.catalog import Catalog
from dse.engines.rl_scaling import PolicyShape, PPOIterationCost, policy_shape, ppo_iteration
from dse.figures.rl_scaling import iteration_time_split, samples_per_s_vs_minibatch
from dse.scenarios.base import (
    Chart,
    Column,
    EvaluationResult,
    InputError,
    MetricSpec,
    ScenarioKind,
    StrictModel,
    Table,
)
from dse.scenarios.presets import preset_or_inline
from dse.specs.hardware import BYTES_PER_ELEMENT, AcceleratorSpec
from dse.specs.network import InterconnectSpec
from dse.specs.workloads import PolicyLayerSpec, RLWorkloadSpec

DAY_S = 86_400.0
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
    minibatch_samples: int | None = Field(None, ge=1, description="Minibatch summed over all GPUs (samples).")
    update_epochs: int | None = Field(None, ge=1, le=1000, description="Passes over each batch.")
    total_samples_target: float | None = Field(None, gt=0, le=1e15, description="Samples to train on.")
    env_step_time_ms: float | None = Field(None, gt=0, le=1e6, description="One environment step on an idle core, ms.")
    cpu_cores: int | None = Field(None, ge=1, le=100_000, description="CPU cores per node.")
    cpu_cores_per_env: float | None = Field(None, gt=0, le=64, description="Cores one environment keeps busy.")
    gpus_per_node: int = Field(8, ge=1, le=64, description="GPUs per node (environments share that node's cores).")
    link: str | InterconnectSpec | None = Field(
        None, description="interconnects preset (or inline spec) for the all-reduce; replaces the two numbers below."
    )
    link_bandwidth_gb_per_s: float = Field(300.0, gt=0, le=1e5, description=f"All-reduce link, GB/s. {LINK_SOURCE}.")
    link_latency_us: float = Field(
        5.7, ge=0, le=1e6, description=f"All-reduce per-step latency, µs. {LINK_LATENCY_SOURCE}."
    )
    host_link: str | InterconnectSpec | None = Field(
        None,
        description="interconnects preset (or inline spec) from host to GPU; replaces the number below.",
    )
    host_link_bandwidth_gb_per_s: float = Field(
        31.5, gt=0, le=1e5, description=f"Host -> GPU, GB/s. {HOST_LINK_SOURCE}."
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
def _shape(layers: tuple[PolicyLayerSpec, ...]) -> PolicyShape:
    return policy_shape(layers)


def _override(value: Any, default: Any) -> Any:
    return default if value is None else value


def run_ppo(resolved: RLScalingResolved, **overrides: Any) -> PPOIterationCost:
    """The engine on a resolved tree; `overrides` replace engine arguments (e.g. arrays for figures)."""
    acc = resolved.accelerator
    args: dict[str, Any] = {
        "shape": _shape(resolved.policy_layers),
        "num_gpus": resolved.num_gpus,
        "envs_per_gpu": resolved.envs_per_gpu,
        "rollout_steps_per_env": resolved.rollout_steps_per_env,
        "minibatch_samples": resolved.minibatch_samples,
        "update_epochs": resolved.update_epochs,
        "total_samples_target": resolved.total_samples_target,
        "env_step_time_s": resolved.env_step_time_s,
        "cpu_cores": resolved.cpu_cores,
        "cpu_cores_per_env": resolved.cpu_cores_per_env,
        "gpus_per_node": resolved.gpus_per_node,
        "observation_bytes_per_sample": resolved.observation_bytes_per_sample,
        "bytes_per_element": BYTES_PER_ELEMENT[resolved.compute_dtype],
        "peak_flops_per_s": acc.peak_for(resolved.compute_dtype),
        "memory_bandwidth_bytes_per_s": acc.memory_bandwidth_bytes_per_s,
        "compute_efficiency": acc.compute_efficiency,
        "memory_efficiency": acc.memory_efficiency,
        "kernel_launch_s": resolved.kernel_launch_s,
        "host_link_bandwidth_bytes_per_s": resolved.host_link_bandwidth_bytes_per_s,
        "link_bandwidth_bytes_per_s": resolved.link_bandwidth_bytes_per_s,
        "link_latency_s": resolved.link_latency_s,
    }
    args.update(overrides)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ppo_iteration(**args)


_SPLIT = {
    "env_stepping_s": "simulator steps (CPU)",
    "inference_s": "policy inference (GPU)",
    "forward_backward_s": "forward + backward (GPU)",
    "all_reduce_s": "gradient all-reduce (link)",
    "optimizer_s": "Adam step (GPU)",
}


class RLScalingKind(ScenarioKind[RLScalingInputs, RLScalingResolved]):
    kind = "rl_scaling"
    title = "PPO scaling on many GPUs (CaRL)"
    description = (
        "Synchronous PPO (DD-PPO) as in CaRL: environments step their simulators on CPU cores, the policy "
        "runs batched on each GPU, then epochs of minibatch updates all-reduce the gradients. Samples/s, "
        "iterations, gradient steps and wall time to a sample target, GPU and CPU busy fractions."
    )
    engine_version = "1"
    inputs_model = RLScalingInputs
    metric_specs: ClassVar[dict[str, MetricSpec]] = {
        "samples_per_s": MetricSpec(label="Samples per second", unit="samples/s", formula="batch / T_iter"),
        "iteration_s": MetricSpec(label="Iteration time", unit="s", formula="T_rollout + T_update"),
        "rollout_s": MetricSpec(
            label="Rollout time", unit="s", formula="steps * (t_env * contention + t_infer(envs_per_gpu) + copy)"
        ),
        "update_s": MetricSpec(
            label="Update time",
            unit="s",
            formula="epochs * floor(batch/minibatch) * (t_fwd+bwd + t_allreduce + t_adam)",
        ),
        "env_stepping_s": MetricSpec(label="Simulator stepping", unit="s", formula="steps * t_env * contention"),
        "inference_s": MetricSpec(
            label="Policy inference", unit="s", formula="steps * (t_fwd(envs_per_gpu) + copy_in)"
        ),
        "forward_backward_s": MetricSpec(
            label="Forward + backward", unit="s", formula="gradient steps * t_fwd+bwd(minibatch / gpus)"
        ),
        "all_reduce_s": MetricSpec(
            label="Gradient all-reduce", unit="s", formula="gradient steps * (2(n-1)/n * P*w / BW + 2(n-1) * latency)"
        ),
        "optimizer_s": MetricSpec(label="Adam steps", unit="s", formula="gradient steps * 7*P*w / (BW_mem * eta_m)"),
        "iterations_to_target": MetricSpec(label="Iterations to target", unit="", formula="floor(target / batch)"),
        "gradient_steps_to_target": MetricSpec(
            label="Gradient steps to target", unit="", formula="iterations * epochs * floor(batch / minibatch)"
        ),
        "wall_time_to_target_s": MetricSpec(label="Wall time to target", unit="s", formula="iterations * T_iter"),
        "wall_time_to_target_days": MetricSpec(
            label="Wall time to target", unit="days", formula="iterations * T_iter / 86400"
        ),
        "gpu_busy_fraction": MetricSpec(
            label="GPU busy fraction", unit="", formula="(steps * t_infer + t_fwd+bwd + t_adam) / T_iter"
        ),
        "cpu_busy_fraction": MetricSpec(
            label="CPU busy fraction", unit="", formula="min(1, envs_node * cores_per_env / cores) * T_env / T_iter"
        ),
        "cpu_contention": MetricSpec(
            label="CPU contention slowdown", unit="x", formula="max(1, (envs_node * cores_per_env + learners) / cores)"
        ),
        "batch_samples": MetricSpec(label="Batch per iteration", unit="samples", formula="gpus * envs_per_gpu * steps"),
        "minibatches_per_epoch": MetricSpec(label="Minibatches per epoch", unit="", formula="floor(batch / minibatch)"),
        "policy_parameters": MetricSpec(label="Policy parameters", unit="", formula="sum over layers"),
        "forward_gflop_per_sample": MetricSpec(
            label="Forward work per sample", unit="GFLOP", formula="sum over layers"
        ),
    }

    def resolve(self, inputs: RLScalingInputs, catalog: Catalog) -> RLScalingResolved:
        workload: RLWorkloadSpec = preset_or_inline(catalog, "rl_workloads", inputs.workload, "workload")
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
            _shape(tuple(workload.policy_layers))
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

    def compute(self, resolved: RLScalingResolved) -> dict[str, Any]:
        cost = run_ppo(resolved)
        shape = _shape(resolved.policy_layers)
        zero = 0.0 * np.asarray(cost.iteration_s)
        return {
            "samples_per_s": cost.samples_per_s,
            "iteration_s": cost.iteration_s,
            "rollout_s": cost.rollout_s,
            "update_s": cost.update_s,
            "env_stepping_s": cost.env_stepping_s,
            "inference_s": cost.inference_s,
            "forward_backward_s": cost.forward_backward_s,
            "all_reduce_s": cost.all_reduce_s,
            "optimizer_s": cost.optimizer_s,
            "iterations_to_target": cost.iterations_to_target,
            "gradient_steps_to_target": cost.gradient_steps_to_target,
            "wall_time_to_target_s": cost.wall_time_to_target_s,
            "wall_time_to_target_days": np.asarray(cost.wall_time_to_target_s) / DAY_S,
            "gpu_busy_fraction": cost.gpu_busy_fraction,
            "cpu_busy_fraction": cost.cpu_busy_fraction,
            "cpu_contention": cost.contention,
            "batch_samples": cost.batch_samples,
            "minibatches_per_epoch": cost.minibatches_per_epoch,
            "policy_parameters": shape.total_parameters + zero,
            "forward_gflop_per_sample": shape.forward_flop_per_sample / 1e9 + zero,
        }

    def evaluate(self, resolved: RLScalingResolved) -> EvaluationResult:
        values = self.compute(resolved)
        cost = run_ppo(resolved)
        shape = _shape(resolved.policy_layers)
        r = resolved
        per_gpu_minibatch = r.minibatch_samples / r.num_gpus
        common = {"gpus": r.num_gpus, "envs_per_gpu": r.envs_per_gpu, "steps": r.rollout_steps_per_env}
        metrics = [
            self.metric(
                "samples_per_s",
                values["samples_per_s"],
                batch=float(cost.batch_samples),
                T_iter=float(cost.iteration_s),
            ),
            self.metric(
                "iteration_s", values["iteration_s"], T_rollout=float(cost.rollout_s), T_update=float(cost.update_s)
            ),
            self.metric(
                "rollout_s",
                values["rollout_s"],
                steps=r.rollout_steps_per_env,
                t_env=r.env_step_time_s,
                contention=float(cost.contention),
            ),
            self.metric(
                "update_s",
                values["update_s"],
                epochs=r.update_epochs,
                minibatches=float(cost.minibatches_per_epoch),
                per_gpu_minibatch=per_gpu_minibatch,
            ),
            self.metric(
                "env_stepping_s", values["env_stepping_s"], steps=r.rollout_steps_per_env, t_env=r.env_step_time_s
            ),
            self.metric("inference_s", values["inference_s"], envs_per_gpu=r.envs_per_gpu),
            self.metric("forward_backward_s", values["forward_backward_s"], per_gpu_minibatch=per_gpu_minibatch),
            self.metric(
                "all_reduce_s",
                values["all_reduce_s"],
                n=r.num_gpus,
                gradient_bytes=float(np.asarray(cost.gradient_bytes)),
                BW=r.link_bandwidth_bytes_per_s,
                latency=r.link_latency_s,
            ),
            self.metric("optimizer_s", values["optimizer_s"], P=shape.total_parameters),
            self.metric(
                "iterations_to_target", values["iterations_to_target"], target=r.total_samples_target, **common
            ),
            self.metric(
                "gradient_steps_to_target",
                values["gradient_steps_to_target"],
                epochs=r.update_epochs,
                minibatch=r.minibatch_samples,
            ),
            self.metric("wall_time_to_target_s", values["wall_time_to_target_s"]),
            self.metric("wall_time_to_target_days", values["wall_time_to_target_days"]),
            self.metric("gpu_busy_fraction", values["gpu_busy_fraction"]),
            self.metric(
                "cpu_busy_fraction", values["cpu_busy_fraction"], cores=r.cpu_cores, cores_per_env=r.cpu_cores_per_env
            ),
            self.metric(
                "cpu_contention", values["cpu_contention"], cores=r.cpu_cores, cores_per_env=r.cpu_cores_per_env
            ),
            self.metric("batch_samples", values["batch_samples"], **common),
            self.metric("minibatches_per_epoch", values["minibatches_per_epoch"], minibatch=r.minibatch_samples),
            self.metric("policy_parameters", values["policy_parameters"], layers=shape.layers),
            self.metric("forward_gflop_per_sample", values["forward_gflop_per_sample"]),
        ]
        split = {label: float(np.asarray(getattr(cost, key))) for key, label in _SPLIT.items()}
        total = float(np.asarray(cost.iteration_s))
        tables = [
            Table(
                key="iteration_split",
                title="Where one PPO iteration's time goes",
                columns=[
                    Column(key="part", label="part"),
                    Column(key="s", label="time", unit="s"),
                    Column(key="share", label="share"),
                ],
                rows=[[label, seconds, seconds / total] for label, seconds in split.items()],
            ),
            Table(
                key="policy_layers",
                title="Policy network, per layer (one sample)",
                columns=[
                    Column(key="layer", label="#"),
                    Column(key="kind", label="kind"),
                    Column(key="inputs", label="in"),
                    Column(key="outputs", label="out"),
                    Column(key="parameters", label="parameters"),
                    Column(key="mflop", label="forward", unit="MFLOP"),
                ],
                rows=[
                    [
                        i,
                        layer.kind,
                        layer.inputs,
                        layer.outputs,
                        float(shape.parameters[i]),
                        float(shape.forward_flop[i]) / 1e6,
                    ]
                    for i, layer in enumerate(r.policy_layers)
                ],
            ),
        ]
        figures = [
            Chart(
                key="samples_vs_minibatch",
                title="Samples/s vs minibatch, 1 to 8 GPUs",
                figure=self._minibatch_figure(r),
            ),
            Chart(
                key="iteration_split", title="Time split of an iteration", figure=iteration_time_split(parts_s=split)
            ),
        ]
        minibatch_table, minibatch_note = self._minibatch_answer(r)
        tables.append(minibatch_table)
        references: list[dict[str, Any]] = []
        published_s, published_source = r.published_wall_time
        if published_s > 0:
            engine_s = float(np.asarray(cost.wall_time_to_target_s))
            references.append(
                {
                    "what": f"wall time of {r.workload_name}",
                    "published": published_s / DAY_S,
                    "engine": engine_s / DAY_S,
                    "unit": "days",
                    "error": engine_s / published_s - 1.0,
                    "source": published_source,
                    "note": "The engine omits simulator crashes and restarts "
                    "(CaRL CARLA/README.md: every ~15 min at 128 servers).",
                }
            )
        notes = [
            minibatch_note,
            f"{float(np.asarray(cost.gpu_busy_fraction)):.1%} of the iteration keeps the GPUs computing: "
            "with a policy this small the run is bound by the simulators' CPU time.",
            "Synchronous rollout: every environment steps, then the policy infers once per GPU; "
            "no straggler spread is modelled.",
        ]
        return EvaluationResult(
            kind=self.kind,
            engine_version=self.engine_version,
            metrics=metrics,
            tables=tables,
            charts=figures,
            notes=notes,
            references=references,
        )

    def _minibatch_grid(self, r: RLScalingResolved) -> tuple[NDArray[np.float64], NDArray[np.float64], Any]:
        """Samples/s over (1..8 GPUs) x (minibatch 256 .. the largest 8-GPU batch), in one engine call;
        NaN where the minibatch exceeds the batch or is smaller than the GPU count."""
        gpus = np.arange(1, 9, dtype=np.float64)[:, None]
        largest = 8 * r.envs_per_gpu * r.rollout_steps_per_env
        minibatch = np.asarray(2.0 ** np.arange(8, int(np.log2(largest)) + 1), dtype=np.float64)
        cost = run_ppo(r, num_gpus=gpus, minibatch_samples=minibatch[None, :])
        valid = (minibatch[None, :] <= np.asarray(cost.batch_samples)) & (minibatch[None, :] >= gpus)
        rates = np.where(valid, np.asarray(cost.samples_per_s), np.nan)
        return gpus[:, 0], minibatch, rates

    def _minibatch_figure(self, r: RLScalingResolved) -> dict[str, Any]:
        gpus, minibatch, rates = self._minibatch_grid(r)
        return samples_per_s_vs_minibatch(
            minibatch_samples=minibatch.tolist(),
            samples_per_s_by_gpus={
                int(g): [None if np.isnan(v) else float(v) for v in row] for g, row in zip(gpus, rates, strict=True)
            },
            current=r.minibatch_samples,
        )

    def _minibatch_answer(self, r: RLScalingResolved) -> tuple[Table, str]:
        """Samples/s on the scenario's GPU count as the minibatch grows: a table and one sentence."""
        gpus, minibatch, rates = self._minibatch_grid(r)
        n = int(min(max(r.num_gpus, 1), gpus.size))
        row = rates[n - 1]
        ok = np.isfinite(row)
        rows: list[list[float | int | str | bool | None]] = [
            [float(m), float(v), float(v / row[ok][0])] for m, v, good in zip(minibatch, row, ok, strict=True) if good
        ]
        table = Table(
            key="samples_vs_minibatch",
            title=f"Samples/s on {n} GPUs as the minibatch grows",
            columns=[
                Column(key="minibatch", label="minibatch (all GPUs)", unit="samples"),
                Column(key="samples_per_s", label="samples/s", unit="samples/s"),
                Column(key="vs_smallest", label="vs the smallest minibatch", unit="x"),
            ],
            rows=rows,
        )
        if not ok.any():
            return table, f"No minibatch from 256 up fits the batch on {n} GPUs."
        first, last = float(row[ok][0]), float(row[ok][-1])
        # the smallest minibatch that reaches 95% of the last (largest) one's rate: where growth stops paying
        near = float(minibatch[ok][int(np.argmax(row[ok] >= 0.95 * last))])
        note = (
            f"On {n} GPUs PPO reaches {first:,.0f} samples/s at minibatch {minibatch[ok][0]:,.0f} and "
            f"{last:,.0f} samples/s at {minibatch[ok][-1]:,.0f} (x{last / first:.2f}); 95% of that from minibatch "
            f"{near:,.0f} on. The scenario's minibatch {r.minibatch_samples:,.0f} gives "
            f"{float(np.asarray(run_ppo(r).samples_per_s)):,.0f} samples/s. The rollout does not depend on the "
            "minibatch, so a larger minibatch only shortens the update (fewer optimizer steps and all-reduces)."
        )
        return table, note

    def examples(self) -> list[dict[str, Any]]:
        return [
            {
                "schema_version": 1,
                "kind": self.kind,
                "name": "How many samples/s does PPO reach on 8 GPUs as the mini-batch grows? "
                "(CaRL CARLA: 8 GPUs x 16 environments, 300M samples)",
                "inputs": {"workload": "carl-carla", "accelerator": "a100-80gb"},
            },
            {
                "schema_version": 1,
                "kind": self.kind,
                "name": "CaRL nuPlan: 8 GPUs x 32 environments, 500M samples",
                "inputs": {"workload": "carl-nuplan", "accelerator": "a100-80gb"},
            },
            {
                "schema_version": 1,
                "kind": self.kind,
                "name": "CaRL CARLA on H100 with a 4x smaller minibatch",
                "inputs": {
                    "workload": "carl-carla",
                    "accelerator": "h100-sxm",
                    "minibatch_samples": 4096,
                    "link": "nvlink4",
                    "host_link": "pcie5",
                },
            },
        ]


KIND = RLScalingKind()
