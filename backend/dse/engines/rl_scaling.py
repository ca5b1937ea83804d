"""Synchronous PPO on many GPUs (CaRL / DD-PPO): where an iteration's time goes.

One PPO iteration = rollout + update.
  rollout = steps_per_env * (t_env * contention + t_inference)
      every environment steps its simulator in parallel (one CPU share each), then the policy
      runs once on the accelerator over the envs_per_gpu observations of its GPU;
      contention = max(1, (envs_per_node * cores_per_env + learners_per_node) / cpu_cores).
  update = epochs * floor(batch / minibatch) * (t_fwd+bwd(minibatch / gpus) + t_all_reduce(gradients) + t_adam)
Iterations to a sample target = floor(target / batch) (CaRL's dd_ppo.py: total_timesteps // batch).

The policy is a stack of conv / linear / layernorm layers (`PolicyLayerSpec`); each layer costs a
roofline time on the accelerator (`Device.op_time_s`) plus one kernel launch per pass (the device's
`kernel_overhead_s`); the backward pass costs twice the forward's FLOP and traffic (input and weight
gradients). Everything broadcasts over arrays, the device's rates included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dse.engines.collectives import all_reduce_time
from dse.engines.device import Device
from dse.specs.common import Num
from dse.specs.workloads import PolicyLayerSpec

#: Forward + backward = 3x the forward pass (backward computes input and weight gradients).
TRAINING_PASS_MULTIPLIER = 3.0
#: Kernels per layer in a training step: forward, input gradient, weight gradient.
TRAINING_KERNELS_PER_LAYER = 3.0
#: fp32 Adam step traffic per parameter: read+write weight, read grad, read+write m and v = 7 words.
ADAM_WORDS_PER_PARAMETER = 7.0


@dataclass(frozen=True)
class PolicyShape:
    """Per-layer counts of a policy network for one sample (arrays over layers)."""

    layer_types: tuple[str, ...]
    parameters: NDArray[np.float64]
    forward_flop: NDArray[np.float64]
    #: Input + output activation elements a forward pass of the layer reads and writes.
    activation_elements: NDArray[np.float64]
    output_sides: NDArray[np.float64]

    @property
    def total_parameters(self) -> float:
        return float(self.parameters.sum())

    @property
    def forward_flop_per_sample(self) -> float:
        return float(self.forward_flop.sum())

    @property
    def layers(self) -> int:
        return len(self.layer_types)


def conv_output_side(*, input_side: Num, kernel: Num, stride: Num) -> Num:
    """Unpadded convolution: floor((side - kernel) / stride) + 1."""
    return np.floor((np.asarray(input_side, dtype=np.float64) - kernel) / stride) + 1.0


def policy_shape(layers: Sequence[PolicyLayerSpec]) -> PolicyShape:
    """Parameters, forward FLOP and activation elements of each layer, for one sample.

    conv2d: params = c_in*c_out*k^2 + c_out; FLOP = 2*c_in*c_out*k^2*side_out^2.
    linear: params = n_in*n_out + n_out; FLOP = 2*n_in*n_out.
    layernorm: params = 2*n; FLOP = 5*n (mean, variance, normalise, scale, shift).
    """
    params: list[float] = []
    flop: list[float] = []
    elements: list[float] = []
    sides: list[float] = []
    for layer in layers:
        if layer.layer_type == "conv2d":
            side = float(conv_output_side(input_side=layer.input_side, kernel=layer.kernel, stride=layer.stride))
            if side < 1:
                raise ValueError(f"conv2d kernel {layer.kernel} does not fit an input of side {layer.input_side}")
            taps = layer.inputs * layer.outputs * layer.kernel**2
            params.append(float(taps + layer.outputs))
            flop.append(2.0 * taps * side**2)
            elements.append(float(layer.inputs * layer.input_side**2 + layer.outputs * side**2))
            sides.append(side)
        elif layer.layer_type == "linear":
            params.append(float(layer.inputs * layer.outputs + layer.outputs))
            flop.append(2.0 * layer.inputs * layer.outputs)
            elements.append(float(layer.inputs + layer.outputs))
            sides.append(1.0)
        else:  # layernorm
            params.append(2.0 * layer.inputs)
            flop.append(5.0 * layer.inputs)
            elements.append(2.0 * layer.inputs)
            sides.append(1.0)
    return PolicyShape(
        layer_types=tuple(layer.layer_type for layer in layers),
        parameters=np.asarray(params, dtype=np.float64),
        forward_flop=np.asarray(flop, dtype=np.float64),
        activation_elements=np.asarray(elements, dtype=np.float64),
        output_sides=np.asarray(sides, dtype=np.float64),
    )


def _per_layer(device: Device) -> Device:
    """The device with a trailing axis on every rate, so it broadcasts against arrays over layers."""
    return device.map_rates(lambda x: np.asarray(x, dtype=np.float64)[..., None])


def network_pass_time(
    *,
    shape: PolicyShape,
    samples: Num,
    pass_multiplier: float,
    kernels_per_layer: float,
    bytes_per_element: float,
    device: Device,
) -> Num:
    """Sum over layers of a roofline time for `samples` samples, plus one launch per kernel.

    Per layer: FLOP = m*flop_l*B; bytes = m*(activations_l*B + params_l)*w, with m the pass
    multiplier (1 forward, 3 forward+backward). Launches are added once for all layers
    (kernels_per_layer * layers * kernel_overhead_s). Broadcasts `samples` and the device's rates.
    """
    batch = np.asarray(samples, dtype=np.float64)[..., None]
    cost = _per_layer(device).op_time_s(
        pass_multiplier * shape.forward_flop * batch,
        pass_multiplier * (shape.activation_elements * batch + shape.parameters) * bytes_per_element,
        kernels=0.0,
    )
    launches = kernels_per_layer * shape.layers * np.asarray(device.kernel_overhead_s, dtype=np.float64)
    result: Num = np.sum(cost.time_s, axis=-1) + launches
    return result


def cpu_contention(*, envs_per_node: Num, cpu_cores_per_env: Num, learners_per_node: Num, cpu_cores: Num) -> Num:
    """Slowdown of each environment once the busy processes outnumber the cores (processor sharing)."""
    demand = np.asarray(envs_per_node, dtype=np.float64) * cpu_cores_per_env + learners_per_node
    result: Num = np.maximum(1.0, demand / cpu_cores)
    return result


@dataclass(frozen=True)
class PPOIterationCost:
    """Times (s) and rates of one PPO iteration and of the run to its sample target; broadcast arrays."""

    batch_samples: Num
    minibatches_per_epoch: Num
    gradient_steps_per_iteration: Num
    contention: Num
    env_stepping_s: Num
    inference_s: Num
    rollout_s: Num
    forward_backward_s: Num
    all_reduce_s: Num
    optimizer_s: Num
    update_s: Num
    iteration_s: Num
    samples_per_s: Num
    iterations_to_target: Num
    gradient_steps_to_target: Num
    wall_time_to_target_s: Num
    gpu_busy_fraction: Num
    cpu_busy_fraction: Num
    gradient_bytes: Num


def ppo_iteration(
    *,
    shape: PolicyShape,
    num_gpus: Num,
    envs_per_gpu: Num,
    rollout_steps_per_env: Num,
    minibatch_samples: Num,
    update_epochs: Num,
    total_samples_target: Num,
    env_step_time_s: Num,
    cpu_cores: Num,
    cpu_cores_per_env: Num,
    gpus_per_node: Num,
    observation_bytes_per_sample: Num,
    bytes_per_element: float,
    device: Device,
    host_link_bandwidth_bytes_per_s: Num,
    link_bandwidth_bytes_per_s: Num,
    link_latency_s: Num,
) -> PPOIterationCost:
    """One synchronous PPO iteration on `num_gpus` data-parallel learners (see the module docstring).

    `device` prices every GPU kernel (its `kernel_overhead_s` is the launch cost of one kernel).
    """
    gpus = np.asarray(num_gpus, dtype=np.float64)
    envs = np.asarray(envs_per_gpu, dtype=np.float64)
    batch = gpus * envs * rollout_steps_per_env
    minibatches = np.floor(batch / minibatch_samples)

    gpus_here = np.minimum(gpus, gpus_per_node)
    contention = cpu_contention(
        envs_per_node=envs * gpus_here,
        cpu_cores_per_env=cpu_cores_per_env,
        learners_per_node=gpus_here,
        cpu_cores=cpu_cores,
    )
    env_step = env_step_time_s * contention
    copy_in = envs * observation_bytes_per_sample / host_link_bandwidth_bytes_per_s
    forward = network_pass_time(
        shape=shape,
        samples=envs,
        pass_multiplier=1.0,
        kernels_per_layer=1.0,
        bytes_per_element=bytes_per_element,
        device=device,
    )
    inference_step = forward + copy_in
    env_stepping = rollout_steps_per_env * env_step
    inference = rollout_steps_per_env * inference_step
    rollout = env_stepping + inference

    per_gpu_minibatch = np.asarray(minibatch_samples, dtype=np.float64) / gpus
    train_step = network_pass_time(
        shape=shape,
        samples=per_gpu_minibatch,
        pass_multiplier=TRAINING_PASS_MULTIPLIER,
        kernels_per_layer=TRAINING_KERNELS_PER_LAYER,
        bytes_per_element=bytes_per_element,
        device=device,
    )
    gradient_bytes = shape.total_parameters * bytes_per_element
    reduce_step = all_reduce_time(
        bytes_per_rank=gradient_bytes,
        ranks=gpus,
        bandwidth_bytes_per_s=link_bandwidth_bytes_per_s,
        latency_s=link_latency_s,
    )
    # One memory-bound kernel: its few FLOP per parameter are not priced.
    adam_step = device.op_time_s(0.0, ADAM_WORDS_PER_PARAMETER * shape.total_parameters * bytes_per_element).time_s
    steps_per_iteration = update_epochs * minibatches
    forward_backward = steps_per_iteration * train_step
    all_reduce = steps_per_iteration * reduce_step
    optimizer = steps_per_iteration * adam_step
    update = forward_backward + all_reduce + optimizer
    iteration = rollout + update

    iterations = np.floor(total_samples_target / batch)
    gpu_compute = rollout_steps_per_env * forward + forward_backward + optimizer
    busy_cores = np.minimum(1.0, (envs * gpus_here * cpu_cores_per_env) / cpu_cores)
    return PPOIterationCost(
        batch_samples=batch,
        minibatches_per_epoch=minibatches,
        gradient_steps_per_iteration=steps_per_iteration,
        contention=contention,
        env_stepping_s=env_stepping,
        inference_s=inference,
        rollout_s=rollout,
        forward_backward_s=forward_backward,
        all_reduce_s=all_reduce,
        optimizer_s=optimizer,
        update_s=update,
        iteration_s=iteration,
        samples_per_s=batch / iteration,
        iterations_to_target=iterations,
        gradient_steps_to_target=iterations * steps_per_iteration,
        wall_time_to_target_s=iterations * iteration,
        gpu_busy_fraction=gpu_compute / iteration,
        cpu_busy_fraction=busy_cores * env_stepping / iteration,
        gradient_bytes=gradient_bytes + 0.0 * batch,
    )
