"""PPO scaling engine (CaRL): the policy's shapes exactly, and the contention / all-reduce /
vectorisation rules.

The published figures (CaRL's schedule: batch, minibatches, iterations, gradient steps; the 300M and
10M runs' wall times) are records in dse/scenarios/kinds/rl_scaling/published.py, checked by
tests/validation/test_published_figures.py. Source of the shapes: autonomousvision/CaRL
CARLA/team_code/model.py (roach_ln2 encoder, its output sizes in comments).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.collectives import all_reduce_time
from dse.engines.device import Device
from dse.engines.rl_scaling import conv_output_side, cpu_contention, policy_shape, ppo_iteration
from dse.specs.workloads import PolicyLayerSpec

CATALOG = default_catalog()
CARLA = CATALOG.get("rl_workloads", "carl-carla")
A100 = CATALOG.get("accelerators", "a100-80gb")


def _run(workload=CARLA, accelerator=A100, **overrides):
    args = {
        "shape": policy_shape(workload.policy_layers),
        "num_gpus": workload.num_gpus,
        "envs_per_gpu": workload.envs_per_gpu,
        "rollout_steps_per_env": workload.rollout_steps_per_env,
        "minibatch_samples": workload.minibatch_samples,
        "update_epochs": workload.update_epochs,
        "total_samples_target": workload.total_samples_target,
        "env_step_time_s": workload.env_step_time_s,
        "cpu_cores": workload.cpu_cores,
        "cpu_cores_per_env": workload.cpu_cores_per_env,
        "gpus_per_node": 8,
        "observation_bytes_per_sample": workload.observation_bytes_per_sample,
        "bytes_per_element": 4.0,
        "device": Device.from_accelerator(accelerator, "fp32"),
        "host_link_bandwidth_bytes_per_s": 31.5e9,
        "link_bandwidth_bytes_per_s": 300e9,
        "link_latency_s": 5.7e-6,
    }
    args.update(overrides)
    return ppo_iteration(**args)


def test_roach_ln2_encoder_output_sides_match_the_repo_comments():
    """model.py comments: 256 -> 126 -> 61 -> 29 -> 13 -> 6 -> 4 -> 2 pixels, 256 channels: 1,024 features. Exact."""
    shape = policy_shape(CARLA.policy_layers)
    conv_sides = [s for s, k in zip(shape.output_sides, shape.layer_types, strict=True) if k == "conv2d"]
    assert conv_sides == [126, 61, 29, 13, 6, 4, 2]
    joint = next(layer for layer in CARLA.policy_layers if layer.layer_type == "linear" and layer.outputs == 512)
    assert joint.inputs == 256 * 2 * 2 + 256  # flattened CNN + measurement encoder


def test_layer_formulas_exactly():
    """conv: c_in c_out k^2 + c_out params, 2 c_in c_out k^2 side^2 FLOP; linear: n_in n_out + n_out, 2 n_in n_out;
    layernorm: 2n params."""
    shape = policy_shape(
        (
            PolicyLayerSpec(layer_type="conv2d", inputs=10, outputs=8, kernel=5, stride=2, input_side=256),
            PolicyLayerSpec(layer_type="linear", inputs=1280, outputs=512),
            PolicyLayerSpec(layer_type="layernorm", inputs=512, outputs=512),
        )
    )
    assert shape.parameters.tolist() == [10 * 8 * 25 + 8, 1280 * 512 + 512, 2 * 512]
    assert shape.forward_flop.tolist() == [2 * 10 * 8 * 25 * 126**2, 2 * 1280 * 512, 5 * 512]
    assert conv_output_side(input_side=13, kernel=3, stride=2) == 6


def test_a_conv_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        policy_shape((PolicyLayerSpec(layer_type="conv2d", inputs=1, outputs=1, kernel=5, input_side=3),))


def test_contention_is_processor_sharing():
    """max(1, (envs x cores_per_env + learners) / cores): 128 envs + 8 learners on 128 cores -> 1.0625. Exact."""
    assert cpu_contention(envs_per_node=128, cpu_cores_per_env=1.0, learners_per_node=8, cpu_cores=128) == 1.0625
    assert cpu_contention(envs_per_node=8, cpu_cores_per_env=1.0, learners_per_node=1, cpu_cores=128) == 1.0
    doubled = _run(envs_per_gpu=32)
    assert float(doubled.contention) == pytest.approx((256 + 8) / 128)


def test_all_reduce_reuses_the_collective_primitive():
    """Each gradient step all-reduces the fp32 gradients once (DDP): exactly steps x ring all-reduce time."""
    cost = _run()
    params = policy_shape(CARLA.policy_layers).total_parameters
    one = all_reduce_time(bytes_per_rank=4.0 * params, ranks=8, bandwidth_bytes_per_s=300e9, latency_s=5.7e-6)
    assert float(cost.all_reduce_s) == pytest.approx(12 * one, rel=1e-12)
    assert float(_run(num_gpus=1, minibatch_samples=2048).all_reduce_s) == 0.0


def test_one_call_sweeps_gpus_and_minibatch():
    """Arrays broadcast: 8 GPU counts x 7 minibatch sizes in one call; more GPUs (envs per GPU fixed) give
    more samples/s; a smaller minibatch never gives more (more gradient steps, same work)."""
    gpus = np.arange(1, 9, dtype=float)[:, None]
    minibatch = 2.0 ** np.arange(10, 17)[None, :]
    cost = _run(num_gpus=gpus, minibatch_samples=minibatch)
    rate = np.asarray(cost.samples_per_s)
    assert rate.shape == (8, 7)
    assert np.all(np.diff(rate, axis=0) > 0)
    assert np.all(np.diff(rate, axis=1) >= 0)
    assert np.all((np.asarray(cost.gpu_busy_fraction) > 0) & (np.asarray(cost.gpu_busy_fraction) < 1))


def test_busy_fractions_and_time_split_add_up():
    """The split sums to the iteration; the CARLA run is simulator-bound (CPU busy > 90%, GPU busy < 10%)."""
    cost = _run()
    parts = cost.env_stepping_s + cost.inference_s + cost.forward_backward_s + cost.all_reduce_s + cost.optimizer_s
    assert float(parts) == pytest.approx(float(cost.iteration_s), rel=1e-12)
    assert float(cost.cpu_busy_fraction) > 0.9 and float(cost.gpu_busy_fraction) < 0.1


def test_device_rates_broadcast_against_the_layer_axis():
    """A swept device rate (an array) broadcasts with the samples, never against the layers: three memory
    efficiencies give three iteration times, each that of a scalar device (exact)."""
    efficiencies = np.array([0.3, 0.6, 0.9])
    swept = _run(device=Device.from_accelerator(replace(A100, memory_efficiency=efficiencies), "fp32"))
    one_by_one = [float(_run(accelerator=replace(A100, memory_efficiency=e)).iteration_s) for e in efficiencies]
    assert np.asarray(swept.iteration_s).tolist() == one_by_one
