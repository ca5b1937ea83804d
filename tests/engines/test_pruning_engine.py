"""Pruning engine: UNet counter, codes, Sinkhorn routing, serving cost.

Exact formulas are tested exactly (to float round-off, rel 1e-12); published figures are records in
dse/scenarios/kinds/pruning/published.py (tests/validation/test_published_figures.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dse.catalog import default_catalog
from dse.catalog.calibration import load_fits, stack_device
from dse.engines import kernels
from dse.engines import pruning as eng
from dse.engines.device import Device
from dse.engines.transformer import parameter_breakdown


@pytest.fixture(scope="module")
def sd21():
    return default_catalog().get("diffusion", "sd21")


@pytest.fixture(scope="module")
def sd15():
    return default_catalog().get("diffusion", "sd15")


def _unet(spec):
    return eng.unet_layer_table(spec.unet, spec.text_encoder.max_position_embeddings)


# --- the text tower against the shared transformer counter ---------------------------------------
# The published counts (SD 2.1 / SD 1.5 UNet parameters, SD 2.1 MACs per step at 512 and 768 px, the
# CLIP ViT-L/14 text tower) are records in dse/scenarios/kinds/pruning/published.py, tested by
# tests/validation/test_published_figures.py.


def test_text_encoders_match_the_shared_transformer_counter(sd15, sd21):
    """The CLIP text tower rows count what dse.engines.transformer counts for a GELU, LayerNorm,
    biased, learned-position encoder with no LM head (exact)."""
    for spec in (sd15, sd21):
        te = spec.text_encoder
        counted = eng.count_layers(eng.text_encoder_layer_table(te), latent_side=0.0).params.sum()
        shared = parameter_breakdown(
            hidden_size=te.hidden_size,
            num_layers=te.num_hidden_layers,
            num_heads=te.num_attention_heads,
            num_kv_heads=te.num_attention_heads,
            ffn_hidden_size=te.intermediate_size,
            vocab_size=te.vocab_size,
            gated_ffn=False,
            tied_embeddings=True,
            learned_positions=te.max_position_embeddings,
            layernorm=True,
            linear_bias=True,
        ).total
        assert counted == shared


# --- exact formulas ----------------------------------------------------------------------------


def test_conv_in_row_is_counted_exactly(sd21):
    """conv_in: 3x3, 4 -> 320 channels with bias: 9*4*320 + 320 params, 9*4*320*side^2 MACs."""
    table = _unet(sd21)
    row = table.row_names.index("conv_in")
    counts = eng.count_layers(table, latent_side=64.0)
    assert counts.params[row] == 9 * 4 * 320 + 320
    assert counts.macs[row] == 9 * 4 * 320 * 64**2


def test_attention_matmuls_are_two_n_squared_c(sd21):
    """Self-attention QK^T and PV of a level-0 transformer: 2 * N^2 * c MACs, N = side^2 tokens;
    cross-attention: 2 * N * 77 * c (77 text tokens)."""
    table = _unet(sd21)
    counts = eng.count_layers(table, latent_side=64.0)
    n, c = 64**2, 320
    self_row = table.row_names.index("down_blocks.0.attentions.0.transformer_blocks.0.attn1.matmuls")
    cross_row = table.row_names.index("down_blocks.0.attentions.0.transformer_blocks.0.attn2.matmuls")
    assert counts.macs[self_row] == 2 * n * n * c
    assert counts.macs[cross_row] == 2 * n * 77 * c


def test_folded_block_counts_equal_the_row_sums(sd21):
    """count_blocks / total_macs (folded coefficients) equal summing count_layers, for random codes
    and resolutions (exact up to round-off)."""
    table = _unet(sd21)
    rng = np.random.default_rng(0)
    keep = rng.uniform(0.1, 1.0, size=(5, len(table.prunable_blocks), 3))
    side = np.array([8.0, 32.0, 64.0, 96.0, 128.0])
    rows = eng.count_layers(table, latent_side=side, keep=keep)
    blocks = eng.count_blocks(table, latent_side=side, keep=keep)
    np.testing.assert_allclose(blocks.macs, eng.sum_by_block_and_category(table, rows.macs), rtol=1e-12)
    np.testing.assert_allclose(blocks.params, eng.sum_by_block_and_category(table, rows.params), rtol=1e-12)
    total = eng.total_macs(table, latent_side=side, keep=keep, include_attention_matmuls=True)
    np.testing.assert_allclose(total, rows.macs.sum(axis=-1), rtol=1e-12)


def test_ffn_only_code_removes_exactly_its_share(sd21):
    """Keeping half the FFN width everywhere removes half the FFN MACs and nothing else, so
    R = 1 - 0.5 * (FFN MACs / all MACs) exactly."""
    table = _unet(sd21)
    rows = eng.count_layers(table, latent_side=64.0)
    ffn = sum(rows.macs[i] for i, name in enumerate(table.row_names) if ".ff." in name)
    keep = np.ones((len(table.prunable_blocks), 3))
    keep[:, 2] = 0.5
    r = eng.resource_ratio(sd21, image_side_px=512, keep=keep)
    assert r == pytest.approx(1 - 0.5 * ffn / rows.macs.sum(), rel=1e-12)


def test_resource_ratio_full_code_is_one_and_monotone(sd21):
    n = len(_unet(sd21).prunable_blocks)
    fractions = np.linspace(0.1, 1.0, 10)
    r = eng.resource_ratio(sd21, image_side_px=768, keep=np.broadcast_to(fractions[:, None, None], (10, n, 3)))
    assert r[-1] == pytest.approx(1.0, rel=1e-15)
    assert np.all(np.diff(r) > 0)


def test_resource_ratio_vectorised_over_resolution_equals_one_by_one(sd21):
    n = len(_unet(sd21).prunable_blocks)
    keep = np.full((n, 3), 0.6)
    sides = np.array([256.0, 512.0, 768.0, 1024.0])
    together = eng.resource_ratio(sd21, image_side_px=sides, keep=keep)
    alone = [float(eng.resource_ratio(sd21, image_side_px=s, keep=keep)) for s in sides]
    np.testing.assert_allclose(together, alone, rtol=1e-13)


def test_uniform_keep_for_ratio_inverts_the_counter(sd21):
    targets = np.array([0.4, 0.66, 0.85])
    u = eng.uniform_keep_for_ratio(sd21, target_ratio=targets, image_side_px=768)
    n = len(_unet(sd21).prunable_blocks)
    r = eng.resource_ratio(sd21, image_side_px=768, keep=np.broadcast_to(u[:, None, None], (3, n, 3)))
    np.testing.assert_allclose(r, targets, atol=1e-12)


@pytest.mark.parametrize("include_attention", [True, False])
def test_total_macs_for_few_points_is_the_per_block_loop_to_the_last_bit(sd21, monkeypatch, include_attention):
    """Few points stack the blocks into one GEMM; many loop over blocks: the same products and sums."""
    table = _unet(sd21)
    n = len(table.prunable_blocks)
    rng = np.random.default_rng(3)
    keeps = [rng.uniform(size=(n, 3)), rng.uniform(size=(5, n, 3)), np.broadcast_to(0.37, (n, 3)), None]
    few = [eng.total_macs(table, latent_side=96.0, keep=k, include_attention_matmuls=include_attention) for k in keeps]
    monkeypatch.setattr(eng.counter, "FEW_POINTS", -1)
    for k, stacked in zip(keeps, few, strict=True):
        looped = eng.total_macs(table, latent_side=96.0, keep=k, include_attention_matmuls=include_attention)
        assert np.array_equal(stacked, looped)


def _bisected_keep(spec, target, side_px, include_attention):
    """The reference: 50 halvings of [0, 1] on `resource_ratio` (what the engine solved before the closed form)."""
    n = len(_unet(spec).prunable_blocks)
    shape = np.broadcast_shapes(np.shape(target), np.shape(side_px))
    lo, hi = np.zeros(shape), np.ones(shape)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        keep = np.broadcast_to(mid[..., None, None], (*shape, n, 3))
        r = eng.resource_ratio(spec, image_side_px=side_px, keep=keep, include_attention_matmuls=include_attention)
        lo, hi = np.where(r > target, lo, mid), np.where(r > target, mid, hi)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("include_attention", [True, False])
def test_uniform_keep_for_ratio_is_the_bisection_to_the_last_bit(sd21, include_attention):
    """Exact keeps (0.6 of 320 channels) put the root on a bisection cell's edge, where R's round-off picks
    the cell and the serving model's GEMM tiles see the difference: the solve lands in the same cell."""
    n = len(_unet(sd21).prunable_blocks)
    exact = np.array([1 / 320, 0.25, 0.5, 0.6, 0.65, 0.8125, 0.95, 1.0])
    sides = np.array([[256.0], [768.0]])
    on_edges = eng.resource_ratio(
        sd21,
        image_side_px=sides,
        keep=np.broadcast_to(exact[:, None, None], (len(exact), n, 3)),
        include_attention_matmuls=include_attention,
    )
    off_range = np.array([[-0.1, 0.0, 1e-12, 0.4321, 1.0, 1.2]] * 2)
    nearby = [np.nextafter(on_edges, -np.inf), np.nextafter(on_edges, np.inf), on_edges * (1 + 4e-16)]
    targets = np.concatenate([on_edges, *nearby, off_range], axis=-1)
    solved = eng.uniform_keep_for_ratio(
        sd21, target_ratio=targets, image_side_px=sides, include_attention_matmuls=include_attention
    )
    assert np.array_equal(solved, _bisected_keep(sd21, targets, sides, include_attention))


def test_uniform_keep_macs_is_total_macs_of_the_uniform_code(sd21):
    table = _unet(sd21)
    n = len(table.prunable_blocks)
    u = np.array([0.0, 0.3, 0.75, 1.0])
    for include_attention in (True, False):
        c = eng.counter.uniform_keep_macs(table, latent_side=96.0, include_attention_matmuls=include_attention)
        counted = eng.total_macs(
            table,
            latent_side=96.0,
            keep=np.broadcast_to(u[:, None, None], (4, n, 3)),
            include_attention_matmuls=include_attention,
        )
        np.testing.assert_allclose(c[0] + c[1] * u + c[2] * u**2, counted, rtol=1e-14)


def test_a_kept_uniform_keep_is_the_solve_run_afresh(sd21, monkeypatch):
    kept = eng.uniform_keep_for_ratio(sd21, target_ratio=0.612345, image_side_px=640)
    assert eng.uniform_keep_for_ratio(sd21, target_ratio=0.612345, image_side_px=640) is kept
    assert not kept.flags.writeable
    monkeypatch.setattr(eng.codes, "KEPT_MAX_POINTS", 0)  # not kept: solved again
    fresh = eng.uniform_keep_for_ratio(sd21, target_ratio=0.612345, image_side_px=640)
    assert fresh is not kept and fresh == kept
    assert eng.uniform_keep_for_ratio(sd21, target_ratio=0.612345, image_side_px=768) != kept


# --- routing -----------------------------------------------------------------------------------


def test_sinkhorn_with_flat_cost_is_the_product_plan():
    """With a constant cost the entropic optimum is the independent coupling a b^T (exact)."""
    a, b = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.6, 0.3])
    plan = eng.sinkhorn(cost=np.zeros((3, 3)), row_marginal=a, col_marginal=b, epsilon=0.1).plan
    np.testing.assert_allclose(plan, np.outer(a, b), atol=1e-12)


def test_sinkhorn_meets_marginals_and_sorts_capacity():
    """Marginals hold (1e-9); at small epsilon the plan approaches the monotone coupling:
    the neediest category goes to the biggest code."""
    share = np.array([0.25, 0.25, 0.25, 0.25])
    need = np.array([0.9, 0.7, 0.5, 0.3])
    ratio = np.array([0.35, 0.55, 0.75, 0.95])
    routing = eng.route_prompts(
        category_share=share,
        category_capacity=need,
        code_ratio=ratio,
        code_capacity=np.full(4, 0.25),
        budget_ratio=0.66,
        epsilon=1e-3,
    )
    plan = routing.plan.plan
    np.testing.assert_allclose(plan.sum(axis=1), share, atol=1e-9)
    np.testing.assert_allclose(plan.sum(axis=0), 0.25, atol=1e-9)
    np.testing.assert_allclose(plan, np.fliplr(np.eye(4)) * 0.25, atol=1e-6)
    # mean R is fixed by the capacities: sum_k b_k R_k
    assert routing.mean_ratio == pytest.approx(ratio.mean(), abs=1e-9)
    assert bool(routing.budget_met)
    assert routing.mean_shortfall == pytest.approx(0.0, abs=1e-6)


def test_budget_check_follows_user_capacities():
    ratio = np.array([1.0, 0.5])
    kwargs = dict(category_share=np.array([0.5, 0.5]), category_capacity=np.array([0.9, 0.4]), code_ratio=ratio)
    loose = eng.route_prompts(**kwargs, code_capacity=np.array([0.5, 0.5]), budget_ratio=0.66, epsilon=0.01)
    tight = eng.route_prompts(**kwargs, code_capacity=np.array([0.2, 0.8]), budget_ratio=0.66, epsilon=0.01)
    assert not bool(loose.budget_met) and float(loose.mean_ratio) == pytest.approx(0.75, abs=1e-9)
    assert bool(tight.budget_met) and float(tight.mean_ratio) == pytest.approx(0.6, abs=1e-9)


def test_sinkhorn_vectorised_over_problems_equals_one_by_one():
    rng = np.random.default_rng(1)
    cost = rng.uniform(size=(6, 3, 4))
    a = np.full(3, 1 / 3)
    b = rng.dirichlet(np.ones(4), size=6)
    together = eng.sinkhorn(cost=cost, row_marginal=a, col_marginal=b, epsilon=0.05).plan
    for i in range(6):
        alone = eng.sinkhorn(cost=cost[i], row_marginal=a, col_marginal=b[i], epsilon=0.05).plan
        np.testing.assert_allclose(together[i], alone, atol=1e-9)


@pytest.mark.parametrize("epsilon", [0.5, 0.05, 0.01, 1e-3])
def test_one_problem_solved_factorised_matches_the_general_solve(monkeypatch, epsilon):
    """A single problem takes the factorised path (precomputed exp(-C/eps), a matrix-vector product per half
    step): the same iterates as the general log-sum-exp solve, so the same iteration count and plan."""
    rng = np.random.default_rng(7)
    cost = eng.routing_cost(code_ratio=rng.uniform(0.25, 0.95, 8), category_capacity=rng.uniform(0.3, 0.95, 5))
    a, b = rng.dirichlet(np.ones(5)), np.full(8, 1 / 8)
    args = (cost, a, b, np.asarray(epsilon))
    assert eng.routing._single_sinkhorn(cost, a, b, epsilon, max_iterations=2000, tolerance=1e-9) is not None
    fast = eng.routing._sinkhorn(*args, max_iterations=2000, tolerance=1e-9)
    monkeypatch.setattr(eng.routing, "FACTORISED_MAX_SPREAD", -1.0)  # every problem the general way
    assert eng.routing._single_sinkhorn(cost, a, b, epsilon, max_iterations=2000, tolerance=1e-9) is None
    general = eng.routing._sinkhorn(*args, max_iterations=2000, tolerance=1e-9)
    assert fast.iterations == general.iterations and fast.unconverged == general.unconverged
    np.testing.assert_allclose(fast.plan, general.plan, rtol=0, atol=1e-13)
    assert fast.marginal_error == pytest.approx(general.marginal_error, rel=0, abs=1e-14)


def test_one_problem_whose_scalings_overflow_goes_the_general_way():
    """Costs of 50 at epsilon 0.01 put exp(cost/eps) beyond a double: the general solve takes the problem."""
    rng = np.random.default_rng(11)
    cost = 50.0 + rng.uniform(size=(5, 8))
    a, b = rng.dirichlet(np.ones(5)), np.full(8, 1 / 8)
    assert eng.routing._single_sinkhorn(cost, a, b, 0.01, max_iterations=2000, tolerance=1e-9) is None
    plan = eng.sinkhorn(cost=cost, row_marginal=a, col_marginal=b, epsilon=0.01)
    assert np.isfinite(plan.plan).all() and plan.unconverged == 0
    np.testing.assert_allclose(plan.plan.sum(axis=-1), a, atol=1e-12)


def test_one_problem_with_an_empty_category_goes_the_general_way():
    a, b = np.array([0.4, 0.0, 0.6]), np.array([0.5, 0.5])
    cost = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert eng.routing._single_sinkhorn(cost, a, b, 0.1, max_iterations=2000, tolerance=1e-9) is None
    plan = eng.sinkhorn(cost=cost, row_marginal=a, col_marginal=b, epsilon=0.1).plan
    assert plan[1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(plan.sum(axis=0), b, atol=1e-12)


def test_a_kept_sinkhorn_plan_is_the_plan_computed_afresh(monkeypatch):
    rng = np.random.default_rng(5)
    kwargs = dict(cost=rng.uniform(size=(3, 4)), row_marginal=np.full(3, 1 / 3), col_marginal=np.full(4, 0.25))
    kept = eng.sinkhorn(**kwargs, epsilon=0.05)
    assert eng.sinkhorn(**kwargs, epsilon=0.05) is kept  # the second call is the kept one
    assert not kept.plan.flags.writeable
    monkeypatch.setattr(eng.routing, "KEPT_PLAN_MAX_ELEMENTS", 0)  # not kept: computed again
    fresh = eng.sinkhorn(**kwargs, epsilon=0.05)
    assert fresh is not kept and np.array_equal(fresh.plan, kept.plan) and fresh.iterations == kept.iterations
    assert eng.sinkhorn(**kwargs, epsilon=0.06).plan.tolist() != kept.plan.tolist()


# --- serving -----------------------------------------------------------------------------------


def _device(preset="a100-80gb"):
    return Device.from_accelerator(default_catalog().get("accelerators", preset), "fp16")


def _serve(spec, code_keep, share, static_keep, batch, px=512, device=None):
    return eng.serving_cost(
        spec,
        code_keep=code_keep,
        code_share=share,
        static_keep=static_keep,
        image_side_px=px,
        batch=batch,
        denoising_steps=25,
        guidance_copies=2,
        bytes_per_element=2.0,
        device=_device() if device is None else device,
    )


def test_one_full_code_makes_all_strategies_the_unpruned_pipeline(sd21):
    """One code keeping everything: static = APTP = unpruned at every batch; dynamic = batch-1 cost * B."""
    n = len(_unet(sd21).prunable_blocks)
    ones = np.ones((1, n, 3))
    batch = np.array([1.0, 4.0, 16.0])
    s = _serve(sd21, ones, np.array([1.0]), ones[0], batch)
    np.testing.assert_allclose(s.static_latency_s, s.full_latency_s, rtol=1e-12)
    np.testing.assert_allclose(s.aptp_latency_s, s.full_latency_s, rtol=1e-12)
    np.testing.assert_allclose(s.dynamic_latency_s, batch * s.full_latency_s[0], rtol=1e-12)


def test_serving_over_swept_rates_batches_and_sizes_is_each_point_alone_to_the_last_bit(sd21):
    """Serving prices several batches of one network in one call (the pair of batches, the codes): a sweep whose
    axes could line up with those (two peaks, two resolutions) still gives every point its own numbers."""
    n = len(_unet(sd21).prunable_blocks)
    rng = np.random.default_rng(7)
    keep = rng.uniform(0.3, 1.0, size=(2, n, 3))
    share, static = np.array([0.4, 0.6]), np.full((n, 3), 0.7)
    base = _stack_device("pytorch-eager")
    peaks = np.array([1.5e14, 3.0e14])[:, None, None]
    device = dataclasses.replace(base, gemm=dataclasses.replace(base.gemm, peak_flops_per_s=peaks))
    batch, px = np.array([1.0, 2.0]), np.array([256.0, 512.0])[:, None]

    swept = _serve(sd21, keep, share, static, batch, px, device)
    for i, peak in enumerate(peaks[:, 0, 0]):
        one_device = dataclasses.replace(base, gemm=dataclasses.replace(base.gemm, peak_flops_per_s=float(peak)))
        for j, side in enumerate(px[:, 0]):
            for k, b in enumerate(batch):
                alone = _serve(sd21, keep, share, static, b, side, one_device)
                for field in dataclasses.fields(alone):
                    assert getattr(swept, field.name)[i, j, k] == getattr(alone, field.name), field.name


def _stack_device(stack, preset="a100-80gb"):
    catalog = default_catalog()
    spec = None if stack is None else catalog.get("stacks", stack)
    return stack_device(load_fits(catalog.root), catalog.get("accelerators", preset), "fp16", spec).device


def _subtable(table, rows):
    """The table restricted to `rows` (for pricing one kind of op alone)."""
    fields = {f.name: getattr(table, f.name) for f in dataclasses.fields(table)}
    fields = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
    fields["row_names"] = tuple(table.row_names[i] for i in rows)
    return eng.LayerTable(**fields)


def test_without_a_stack_every_op_is_its_roofline(sd15):
    """No stack: each convolution/linear is max(2MNK / (peak eta_c), (A + KN + MN) w / (bw eta_m)) + overhead with
    A the input read once (implicit GEMM), each attention the roofline of its two matmuls, each norm or
    element-wise op its bytes on the vector units + overhead (exact)."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    acc = _device()
    t = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=acc)
    cat = table.category
    weight = (cat == eng.CONV) | (cat == eng.LINEAR)
    m = 2.0 * counts.tokens
    k = table.kernel_area * counts.width_in
    a = m * table.input_token_ratio * counts.width_in
    gemm_bytes = (a + k * counts.width_out + m * counts.width_out) * 2.0
    flop = np.where(weight, 2.0 * m * counts.width_out * k, 2.0 * 2.0 * counts.macs)
    moved = np.where(weight, gemm_bytes, 2.0 * counts.activation_elements * 2.0)
    peak = np.where(
        weight | (cat == eng.SELF_ATTENTION) | (cat == eng.CROSS_ATTENTION),
        acc.matrix_flops_per_s,
        acc.vector_flops_per_s,
    )
    expected = (
        np.maximum(
            flop / (peak * acc.compute_efficiency), moved / (acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency)
        )
        + acc.kernel_overhead_s
    )
    assert t == pytest.approx(np.sum(expected), rel=1e-12)


def test_fp32_math_devices_follow_pytorch_defaults_on_tf32_parts():
    """fp32 work on a part with TF32: convolutions at the TF32 peak, attention at a third of it (3xTF32); a part
    without a TF32 peak keeps everything in fp32 (exact)."""
    catalog = default_catalog()
    a100 = catalog.get("accelerators", "a100-80gb")
    conv, attention = eng.fp32_math_devices(a100)
    assert conv is not None and attention is not None
    assert conv.matrix_flops_per_s == a100.peak_flops_per_s["tf32"]
    assert attention.matrix_flops_per_s == pytest.approx(a100.peak_flops_per_s["tf32"] / 3.0, rel=1e-15)
    assert attention.memory_bandwidth_bytes_per_s == a100.memory_bandwidth_bytes_per_s
    no_tf32 = dataclasses.replace(a100, peak_flops_per_s={"fp16": a100.peak_flops_per_s["fp16"]})
    assert eng.fp32_math_devices(no_tf32) == (None, None)


def test_math_mode_devices_price_exactly_their_rows(sd21):
    """A convolution device prices the convolution rows alone and an attention device the attention rows alone:
    the UNet's time moves by exactly those rows' roofline times on the other device (exact); given the GEMM
    device itself, nothing moves (==)."""
    table = _unet(sd21)
    counts = eng.count_layers(table, latent_side=96.0)
    a100 = default_catalog().get("accelerators", "a100-80gb")
    fp32 = Device.from_accelerator(a100, "fp32")
    conv, attention = eng.fp32_math_devices(a100)

    def price(t, **kw):
        c = eng.count_layers(t, latent_side=96.0)
        return eng.network_time_s(t, c, batch=2.0, bytes_per_element=4.0, device=fp32, **kw)

    base = price(table)
    assert price(table, conv_device=fp32, attention_device=fp32) == base
    conv_rows = _subtable(table, np.flatnonzero(table.category == eng.CONV))
    att_rows = _subtable(
        table, np.flatnonzero((table.category == eng.SELF_ATTENTION) | (table.category == eng.CROSS_ATTENTION))
    )
    moved = (
        price(conv_rows, conv_device=conv)
        - price(conv_rows)
        + price(att_rows, attention_device=attention)
        - price(att_rows)
    )
    assert price(table, conv_device=conv, attention_device=attention) == pytest.approx(base + moved, rel=1e-12)
    assert counts.macs.sum() > 0 and moved < 0.0


def test_pricing_broadcasts_over_a_swept_rate(sd21):
    """A swept bandwidth and resolution give, point by point, the scalar calls' times (==)."""
    table = _unet(sd21)
    sides = np.array([32.0, 96.0])
    bandwidth = np.array([1.0e12, 2.0e12])
    device = _stack_device("pytorch-eager")
    swept = dataclasses.replace(device, memory_bandwidth_bytes_per_s=bandwidth)
    counts = eng.count_layers(table, latent_side=sides)
    t = eng.network_time_s(table, counts, batch=4.0, bytes_per_element=2.0, device=swept)
    for i in range(2):
        one = dataclasses.replace(device, memory_bandwidth_bytes_per_s=bandwidth[i])
        single = eng.network_time_s(
            table, eng.count_layers(table, latent_side=sides[i]), batch=4.0, bytes_per_element=2.0, device=one
        )
        assert t[i] == pytest.approx(single, rel=1e-12)


def test_fusing_stack_drops_exactly_the_absorbed_element_wise_passes(sd15):
    """torch.compile (pointwise fusion, no epilogue fusion): the UNet costs what the same stack without fusion
    costs, less the element-wise rows that follow a norm or another element-wise op, one launch per group norm
    (eager PyTorch's three GroupNorm kernels, the compiler's two) and the convolutions' bias adds (exact)."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    fused = _stack_device("torch-compile")
    unfused = dataclasses.replace(fused, stack=dataclasses.replace(fused.stack, pointwise_fusion=False))
    t_fused = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=fused)
    t_unfused = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=unfused)
    before = np.concatenate([[-1], table.category[:-1]])
    absorbed = (table.category == eng.ELEMENTWISE) & np.isin(before, (eng.NORM, eng.ELEMENTWISE))
    rows = np.flatnonzero(absorbed)
    assert 0 < rows.size < np.sum(table.category == eng.ELEMENTWISE)
    dropped = fused.elementwise_time_s(0.0, 2.0 * counts.activation_elements[rows] * 2.0).time_s
    group_norms = np.sum((table.category == eng.NORM) & (table.kernel_area == eng.GROUP_NORM_PASSES))
    assert group_norms == 61  # 22 ResNet blocks x 2, 16 transformer blocks, conv_norm_out
    launches = group_norms * fused.stack.elementwise_launch_overhead_s
    conv = (table.category == eng.CONV) & (table.bias > 0)
    bias_adds = fused.elementwise_time_s(0.0, 2.0 * 2.0 * counts.tokens[conv] * counts.width_out[conv] * 2.0).time_s
    assert t_unfused - t_fused == pytest.approx(np.sum(dropped) + launches + np.sum(bias_adds), rel=1e-9)


def test_eager_pytorch_adds_each_convolution_bias_in_its_own_pass(sd15):
    """Eager PyTorch runs cuDNN without the bias and adds it in place: a UNet whose convolutions had no bias costs
    exactly one element-wise pass (read and write of the output, plus a launch) less per convolution (exact)."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    eager = _stack_device("pytorch-2.1-eager-sdpa")
    conv = table.category == eng.CONV
    assert np.all(table.bias[conv] > 0)  # every SD 1.5 UNet convolution has a bias
    no_bias = dataclasses.replace(table, bias=np.where(conv, 0.0, table.bias))
    t = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=eager, channels_last=True)
    t0 = eng.network_time_s(no_bias, counts, batch=2.0, bytes_per_element=2.0, device=eager, channels_last=True)
    passes = eager.elementwise_time_s(0.0, 2.0 * 2.0 * counts.tokens[conv] * counts.width_out[conv] * 2.0).time_s
    assert t - t0 == pytest.approx(np.sum(passes), rel=1e-9)
    tensorrt = _stack_device("tensorrt")  # fuses the bias into the convolution
    t_trt = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=tensorrt)
    assert t_trt == eng.network_time_s(no_bias, counts, batch=2.0, bytes_per_element=2.0, device=tensorrt)


def test_group_norm_reads_twice_and_layer_norm_once(sd15):
    """A GroupNorm row moves 3 tensors (statistics read, normalization read and write), a LayerNorm row 2."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    norm = table.category == eng.NORM
    group = np.array([name.endswith((".norm1", ".norm2", ".norm", "conv_norm_out")) for name in table.row_names])
    group &= ~np.array([".transformer_blocks." in name for name in table.row_names])
    tensor = counts.width_out * counts.tokens
    np.testing.assert_array_equal(counts.activation_elements[norm & group], 3.0 * tensor[norm & group])
    np.testing.assert_array_equal(counts.activation_elements[norm & ~group], 2.0 * tensor[norm & ~group])


def test_fused_head_dims_follow_each_flash_attention_version():
    """v1 (PyTorch 2.0/2.1 SDPA) runs 32/64/128-wide kernels; v2 rounds to a multiple of 32; wider heads than v1's
    128 are priced unpadded."""
    dims = np.array([40.0, 64.0, 80.0, 160.0])
    np.testing.assert_array_equal(eng.fused_head_dim(dims, "flash-attention-1"), [64.0, 64.0, 128.0, 160.0])
    np.testing.assert_array_equal(eng.fused_head_dim(dims, "flash-attention-2"), [64.0, 64.0, 96.0, 160.0])


def test_pytorch_2_1_sdpa_prices_sd15_heads_with_flash_attention_v1(sd15):
    """Under the PyTorch 2.1 stack an 80-wide head is a 128-wide FlashAttention v1 kernel on the v1 fit, slower than
    v2's 96-wide one."""
    table = _unet(sd15)
    rows = np.flatnonzero(table.category == eng.SELF_ATTENTION)[2:3]  # down_blocks.1: 8 heads of 80
    sub = _subtable(table, rows)
    counts = eng.count_layers(sub, latent_side=64.0)
    v1 = _stack_device("pytorch-2.1-eager-sdpa")
    v2 = _stack_device("pytorch-eager-sdpa")
    t1 = eng.network_time_s(sub, counts, batch=2.0, bytes_per_element=2.0, device=v1)
    t2 = eng.network_time_s(sub, counts, batch=2.0, bytes_per_element=2.0, device=v2)
    expected = v1.prefill_attention_time_s(2.0, 8.0, 1024.0, 1024.0, 128.0, causal=False)
    assert t1 == pytest.approx(expected.time_s, rel=1e-12)
    assert t1 > 1.5 * t2


def test_flash_attention_pads_sd15_heads_to_a_multiple_of_32(sd15):
    """SD 1.5's 40-wide heads run as 64-wide ones in the fused kernel (FlashAttention-2 rounds the head size)."""
    table = _unet(sd15)
    device = _stack_device("torch-compile")
    rows = np.flatnonzero(table.category == eng.SELF_ATTENTION)[:1]  # down_blocks.0: 8 heads of 40
    sub = _subtable(table, rows)
    counts = eng.count_layers(sub, latent_side=64.0)
    t = eng.network_time_s(sub, counts, batch=2.0, bytes_per_element=2.0, device=device)
    expected = device.prefill_attention_time_s(2.0, 8.0, 4096.0, 4096.0, 64.0, causal=False)
    assert t == pytest.approx(expected.time_s, rel=1e-12)


def test_eager_unfused_attention_is_two_gemms_and_a_softmax_pass(sd15):
    """pytorch-eager: Q K^T and P V as GEMMs over batch x heads x queries rows, the scores read and written once
    between them (exact)."""
    table = _unet(sd15)
    device = _stack_device("pytorch-eager")
    rows = np.flatnonzero(table.category == eng.CROSS_ATTENTION)[:1]  # 8 heads of 40, 4096 queries, 77 keys
    sub = _subtable(table, rows)
    t = eng.network_time_s(
        sub, eng.count_layers(sub, latent_side=64.0), batch=2.0, bytes_per_element=2.0, device=device
    )
    m = 2.0 * 8.0 * 4096.0
    expected = (
        device.gemm_time_s(m, 77.0, 40.0).time_s
        + device.gemm_time_s(m, 40.0, 77.0).time_s
        + device.elementwise_time_s(0.0, 2.0 * m * 77.0 * 2.0).time_s
    )
    assert t == pytest.approx(expected, rel=1e-12)


def test_unet_step_is_slower_eager_than_compiled_and_counts_its_launches(sd15):
    """At batch 2 and 512 px, eager PyTorch (a host-launched kernel per op) costs more than torch.compile, and
    the UNet has a launch for each of its ~700 ops."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    eager = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=_stack_device("pytorch-eager"))
    compiled = eng.network_time_s(
        table, counts, batch=2.0, bytes_per_element=2.0, device=_stack_device("torch-compile")
    )
    assert eager > 1.5 * compiled
    assert 600 < table.num_rows < 900


def test_batching_per_code_beats_batch_one_when_memory_bound(sd21):
    """At 256 px the UNet at batch 1 is weight-bandwidth bound, so APTP's per-code batches
    out-run dynamic pruning's batch-1 serving once the batch grows (the paper's argument);
    with one prompt, APTP runs exactly the dynamic case (the prompt's code at batch 1)."""
    n = len(_unet(sd21).prunable_blocks)
    fractions = np.array([1.0, 0.8, 0.6, 0.4])
    codes = np.broadcast_to(fractions[:, None, None], (4, n, 3))
    share = np.array([0.1, 0.2, 0.3, 0.4])
    batch = np.array([1.0, 64.0])
    s = _serve(sd21, codes, share, np.full((n, 3), 0.7), batch, px=256)
    assert s.aptp_images_per_s[1] > 1.2 * s.dynamic_images_per_s[1]
    assert s.aptp_latency_s[0] == pytest.approx(s.dynamic_latency_s[0], rel=1e-12)


def test_unconverged_plans_are_rounded_onto_the_exact_marginals():
    """Stopped after 3 iterations, the plan still has the requested marginals exactly (rounding of
    Altschuler, Weed and Rigollet 2017), and the early stop is reported."""
    cost = eng.routing_cost(code_ratio=np.array([0.3, 0.6, 0.9]), category_capacity=np.array([0.95, 0.5]))
    a, b = np.array([0.3, 0.7]), np.array([0.2, 0.3, 0.5])
    result = eng.sinkhorn(cost=cost, row_marginal=a, col_marginal=b, epsilon=1e-3, max_iterations=3)
    assert result.unconverged == 1 and result.marginal_error > 1e-9
    np.testing.assert_allclose(result.plan.sum(axis=1), a, atol=1e-15)
    np.testing.assert_allclose(result.plan.sum(axis=0), b, atol=1e-15)
    assert np.all(result.plan >= -1e-18)


def test_implicit_gemm_reads_its_input_once():
    """A convolution priced as an implicit GEMM: with A = M x K it is the plain GEMM (==); with the input read
    once (9x fewer elements for a 3x3 kernel) only the memory time falls, by exactly those bytes."""
    model = _stack_device("torch-compile").gemm
    m, n, k = 8192.0, 320.0, 2880.0
    plain = kernels.gemm_time_s(model, m, n, k)
    same = kernels.gemm_time_s(model, m, n, k, a_elements=m * k)
    conv = kernels.gemm_time_s(model, m, n, k, a_elements=m * k / 9.0)
    assert same.time_s == plain.time_s and conv.compute_s == plain.compute_s
    saved = m * k * (8.0 / 9.0) * model.input_bytes / (model.memory_bandwidth_bytes_per_s * model.memory_efficiency)
    assert plain.memory_s - conv.memory_s == pytest.approx(saved, rel=1e-12)


def test_nchw_costs_exactly_the_transposes_around_convolutions_and_the_permute_copies(sd15):
    """PyTorch's default NCHW: each convolution's input and output are transposed (two passes each, one kernel
    each) and the transformer permutes are copies; channels-last has neither; TensorRT lays out NHWC itself."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    device = _stack_device("pytorch-eager-sdpa")

    def price(dev, last):
        return eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=dev, channels_last=last)

    conv = np.flatnonzero(table.category == eng.CONV)
    inputs = 2.0 * counts.tokens[conv] * table.input_token_ratio[conv] * counts.width_in[conv]
    outputs = 2.0 * counts.tokens[conv] * counts.width_out[conv]
    copies = np.flatnonzero([name.endswith((".to_tokens", ".to_image")) for name in table.row_names])
    assert copies.size == 2 * 16  # two per transformer block
    # eager GroupNorm is NCHW-only: in channels-last each one copies its input to NCHW and the next conv copies back
    group_norms = np.flatnonzero((table.category == eng.NORM) & (table.kernel_area == eng.GROUP_NORM_PASSES))
    gn_tensor = 2.0 * counts.width_out[group_norms] * counts.tokens[group_norms]
    # back to the image, channels-last eager still copies twice: diffusers' .contiguous() and proj_out's copy back
    back = np.flatnonzero([name.endswith(".to_image") for name in table.row_names])
    expected = (
        np.sum(device.elementwise_time_s(0.0, 2.0 * inputs * 2.0).time_s)
        + np.sum(device.elementwise_time_s(0.0, 2.0 * outputs * 2.0).time_s)
        + np.sum(device.elementwise_time_s(0.0, 2.0 * counts.activation_elements[copies] * 2.0).time_s)
        - 2.0 * np.sum(device.elementwise_time_s(0.0, 2.0 * gn_tensor * 2.0).time_s)
        - 2.0 * np.sum(device.elementwise_time_s(0.0, 2.0 * counts.activation_elements[back] * 2.0).time_s)
    )
    assert price(device, False) - price(device, True) == pytest.approx(expected, rel=1e-9)
    trt = _stack_device("tensorrt")
    assert price(trt, False) == price(trt, True)


def test_channels_last_eager_copies_each_transformer_output_twice_and_a_compiler_none(sd15):
    """Channels-last: eager PyTorch pays, per transformer block, diffusers' .contiguous() back to NCHW and proj_out's
    copy back to channels-last (two passes and a launch each); torch.compile pays neither (exact)."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    back = np.array([name.endswith(".to_image") for name in table.row_names])
    assert np.sum(back) == 16
    without = dataclasses.replace(table, kernel_area=np.where(back, 0.0, table.kernel_area))  # moves nothing
    counts_without = eng.count_layers(without, latent_side=64.0)
    one_copy = 2.0 * 2.0 * counts.activation_elements[back]  # bytes at batch 2, fp16: the row's two passes
    for stack, copies in (("pytorch-2.1-eager-sdpa", 2.0), ("torch-2.1-compile", 0.0)):
        device = _stack_device(stack)

        def price(t, c, device=device):
            return eng.network_time_s(t, c, batch=2.0, bytes_per_element=2.0, device=device, channels_last=True)

        expected = copies * np.sum(device.elementwise_time_s(0.0, one_copy).time_s)
        assert price(table, counts) - price(without, counts_without) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_the_timestep_embedding_is_twelve_launches_eager_and_one_kernel_compiled(sd15):
    """diffusers' sinusoidal timestep embedding: twelve fp32 element-wise kernels on (batch, 320) in eager PyTorch,
    one fused kernel under torch.compile (the first follows conv_in, a GEMM; the rest fuse into it) (exact)."""
    table = _unet(sd15)
    counts = eng.count_layers(table, latent_side=64.0)
    rows = np.array([name.startswith("time_proj.") for name in table.row_names])
    assert [n for n, r in zip(table.row_names, rows, strict=True) if r] == [
        f"time_proj.{op}" for op in eng.TIMESTEP_EMBEDDING_OPS
    ]
    assert len(eng.TIMESTEP_EMBEDDING_OPS) == 12
    without = dataclasses.replace(table, kernel_area=np.where(rows, 0.0, table.kernel_area))
    counts_without = eng.count_layers(without, latent_side=64.0)
    moved = 2.0 * 2.0 * counts.activation_elements[rows]
    for stack, launches in (("pytorch-2.1-eager-sdpa", 12), ("torch-2.1-compile", 1)):
        device = _stack_device(stack)
        t = eng.network_time_s(table, counts, batch=2.0, bytes_per_element=2.0, device=device)
        t0 = eng.network_time_s(without, counts_without, batch=2.0, bytes_per_element=2.0, device=device)
        expected = np.sum(device.elementwise_time_s(0.0, moved[:launches]).time_s)
        assert t - t0 == pytest.approx(expected, rel=1e-9)
