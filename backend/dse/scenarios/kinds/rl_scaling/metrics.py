"""Metrics of `rl_scaling`: every declaration (label, unit, formula), the engine on a resolved tree, `compute`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dse.engines.device import Device
from dse.engines.rl_scaling import PPOIterationCost, ppo_iteration
from dse.scenarios.base import MetricSpec
from dse.scenarios.kinds.rl_scaling.inputs import RLScalingResolved, shape_of
from dse.specs.hardware import BYTES_PER_ELEMENT

DAY_S = 86_400.0

METRICS: dict[str, MetricSpec] = {
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
    "inference_s": MetricSpec(label="Policy inference", unit="s", formula="steps * (t_fwd(envs_per_gpu) + copy_in)"),
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
        label="GPU busy fraction", display="percent", unit="", formula="(steps * t_infer + t_fwd+bwd + t_adam) / T_iter"
    ),
    "cpu_busy_fraction": MetricSpec(
        label="CPU busy fraction",
        display="percent",
        unit="",
        formula="min(1, envs_node * cores_per_env / cores) * T_env / T_iter",
    ),
    "cpu_contention": MetricSpec(
        label="CPU contention slowdown", unit="x", formula="max(1, (envs_node * cores_per_env + learners) / cores)"
    ),
    "batch_samples": MetricSpec(label="Batch per iteration", unit="samples", formula="gpus * envs_per_gpu * steps"),
    "minibatches_per_epoch": MetricSpec(label="Minibatches per epoch", unit="", formula="floor(batch / minibatch)"),
    "policy_parameters": MetricSpec(label="Policy parameters", unit="", formula="sum over layers"),
    "forward_gflop_per_sample": MetricSpec(label="Forward work per sample", unit="GFLOP", formula="sum over layers"),
}


def device(resolved: RLScalingResolved) -> Device:
    """The accelerator for the policy's dtype, its launch cost the scenario's `kernel_launch_s`."""
    accelerator = replace(resolved.accelerator, kernel_overhead_s=resolved.kernel_launch_s)
    return Device.from_accelerator(accelerator, resolved.compute_dtype)


def run_ppo(resolved: RLScalingResolved, **overrides: Any) -> PPOIterationCost:
    """The engine on a resolved tree; `overrides` replace engine arguments (e.g. arrays for charts)."""
    args: dict[str, Any] = {
        "shape": shape_of(resolved.policy_layers),
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
        "device": device(resolved),
        "host_link_bandwidth_bytes_per_s": resolved.host_link_bandwidth_bytes_per_s,
        "link_bandwidth_bytes_per_s": resolved.link_bandwidth_bytes_per_s,
        "link_latency_s": resolved.link_latency_s,
    }
    args.update(overrides)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ppo_iteration(**args)


def compute(resolved: RLScalingResolved) -> dict[str, Any]:
    """Every metric, vectorised over the resolved tree's arrays."""
    return values_of(resolved, run_ppo(resolved))


def values_of(resolved: RLScalingResolved, cost: PPOIterationCost) -> dict[str, Any]:
    """The metrics of one engine answer, keyed as in METRICS."""
    shape = shape_of(resolved.policy_layers)
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


def terms(resolved: RLScalingResolved, cost: PPOIterationCost) -> dict[str, dict[str, float | str]]:
    """The inputs each metric's formula took, shown beside it."""
    r = resolved
    shape = shape_of(r.policy_layers)
    per_gpu_minibatch = r.minibatch_samples / r.num_gpus
    common: dict[str, float | str] = {
        "gpus": r.num_gpus,
        "envs_per_gpu": r.envs_per_gpu,
        "steps": r.rollout_steps_per_env,
    }
    cores: dict[str, float | str] = {"cores": r.cpu_cores, "cores_per_env": r.cpu_cores_per_env}
    return {
        "samples_per_s": {"batch": float(cost.batch_samples), "T_iter": float(cost.iteration_s)},
        "iteration_s": {"T_rollout": float(cost.rollout_s), "T_update": float(cost.update_s)},
        "rollout_s": {
            "steps": r.rollout_steps_per_env,
            "t_env": r.env_step_time_s,
            "contention": float(cost.contention),
        },
        "update_s": {
            "epochs": r.update_epochs,
            "minibatches": float(cost.minibatches_per_epoch),
            "per_gpu_minibatch": per_gpu_minibatch,
        },
        "env_stepping_s": {"steps": r.rollout_steps_per_env, "t_env": r.env_step_time_s},
        "inference_s": {"envs_per_gpu": r.envs_per_gpu},
        "forward_backward_s": {"per_gpu_minibatch": per_gpu_minibatch},
        "all_reduce_s": {
            "n": r.num_gpus,
            "gradient_bytes": float(np.asarray(cost.gradient_bytes)),
            "BW": r.link_bandwidth_bytes_per_s,
            "latency": r.link_latency_s,
        },
        "optimizer_s": {"P": shape.total_parameters},
        "iterations_to_target": {"target": r.total_samples_target, **common},
        "gradient_steps_to_target": {"epochs": r.update_epochs, "minibatch": r.minibatch_samples},
        "cpu_busy_fraction": cores,
        "cpu_contention": cores,
        "batch_samples": common,
        "minibatches_per_epoch": {"minibatch": r.minibatch_samples},
        "policy_parameters": {"layers": shape.layers},
    }
