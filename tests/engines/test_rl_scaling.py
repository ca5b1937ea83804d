"""PPO scaling engine (CaRL): the run's schedule exactly, the policy's shapes exactly, the wall time
against the published one, and the contention / all-reduce / vectorisation rules.

Sources: autonomousvision/CaRL CARLA/team_code/train_carl_cpp.sh (8 GPUs x 16 environments x 512
steps, 4 minibatches, 3 epochs, 300M samples), dd_ppo.py / training.py (num_updates =
total_timesteps // total_batch_size), model.py (roach_ln2 encoder, its output sizes in comments),
CARLA/README.md (128 cores, tiny run 'trains within a day').
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.engines.collectives import all_reduce_time
from dse.engines.rl_scaling import conv_output_side, cpu_contention, policy_shape, ppo_iteration
from dse.specs.workloads import PolicyLayerSpec

DAY = 86_400.0
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
        "peak_flops_per_s": accelerator.peak_for("fp32"),
        "memory_bandwidth_bytes_per_s": accelerator.memory_bandwidth_bytes_per_s,
        "compute_efficiency": accelerator.compute_efficiency,
        "memory_efficiency": accelerator.memory_efficiency,
        "kernel_launch_s": accelerator.kernel_overhead_s,
        "host_link_bandwidth_bytes_per_s": 31.5e9,
        "link_bandwidth_bytes_per_s": 300e9,
        "link_latency_s": 5.7e-6,
    }
    args.update(overrides)
    return ppo_iteration(**args)


def test_carla_schedule_is_reproduced_exactly():
    """train_carl_cpp.sh: 128 envs x 512 steps = 65,536 per batch; 4 minibatches of 16,384 (2,048 per GPU);
    iterations = 300,000,000 // 65,536 = 4,577; gradient steps = 4,577 x 3 epochs x 4 = 54,924. Exact."""
    cost = _run()
    assert cost.batch_samples == 65_536
    assert CARLA.minibatch_samples / CARLA.num_gpus == 2_048
    assert cost.minibatches_per_epoch == 4
    assert cost.gradient_steps_per_iteration == 12
    assert cost.iterations_to_target == 300_000_000 // 65_536 == 4_577
    assert cost.gradient_steps_to_target == 54_924


def test_roach_ln2_encoder_output_sides_match_the_repo_comments():
    """model.py comments: 256 -> 126 -> 61 -> 29 -> 13 -> 6 -> 4 -> 2 pixels, 256 channels: 1,024 features. Exact."""
    shape = policy_shape(CARLA.policy_layers)
    conv_sides = [s for s, k in zip(shape.output_sides, shape.kinds, strict=True) if k == "conv2d"]
    assert conv_sides == [126, 61, 29, 13, 6, 4, 2]
    joint = next(layer for layer in CARLA.policy_layers if layer.kind == "linear" and layer.outputs == 512)
    assert joint.inputs == 256 * 2 * 2 + 256  # flattened CNN + measurement encoder


def test_layer_formulas_exactly():
    """conv: c_in c_out k^2 + c_out params, 2 c_in c_out k^2 side^2 FLOP; linear: n_in n_out + n_out, 2 n_in n_out;
    layernorm: 2n params."""
    shape = policy_shape(
        (
            PolicyLayerSpec(kind="conv2d", inputs=10, outputs=8, kernel=5, stride=2, input_side=256),
            PolicyLayerSpec(kind="linear", inputs=1280, outputs=512),
            PolicyLayerSpec(kind="layernorm", inputs=512, outputs=512),
        )
    )
    assert shape.parameters.tolist() == [10 * 8 * 25 + 8, 1280 * 512 + 512, 2 * 512]
    assert shape.forward_flop.tolist() == [2 * 10 * 8 * 25 * 126**2, 2 * 1280 * 512, 5 * 512]
    assert conv_output_side(input_side=13, kernel=3, stride=2) == 6


def test_a_conv_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        policy_shape((PolicyLayerSpec(kind="conv2d", inputs=1, outputs=1, kernel=5, input_side=3),))


def test_wall_time_against_the_published_carla_run():
    """Published: ~3.5 days for the 300M-sample C++ run on 8 GPUs (deepwiki summary of CaRL CARLA/README.md;
    another page of it says ~5 days, the Python run ~7). The engine omits CARLA's crash-restarts (~every 15
    min at 128 servers, README), so it must come out faster, yet within a factor of 2:
    tolerance 0.5 <= engine / published <= 1.0. Measured here: 2.05 days (0.59x)."""
    engine = float(_run().wall_time_to_target_s)
    ratio = engine / CARLA.published_wall_time_s
    assert 0.5 <= ratio <= 1.0, engine / DAY


def test_tiny_run_stays_near_the_day_its_step_time_came_from():
    """The preset's step time is 1 day x 8 envs / 10M samples (README: the 10M, 1-GPU, 8-env run trains
    within a day). Inference and updates must add little on top: within 5% of one day."""
    tiny = _run(num_gpus=1, envs_per_gpu=8, minibatch_samples=1024, total_samples_target=10e6)
    assert 1.0 <= float(tiny.wall_time_to_target_s) / DAY <= 1.05


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
