"""Plan search speed: GPT-3 175B on 1,024 A100s and Megatron GPT 1T on 3,072 A100s, on one core.

Each search judges every candidate of the default space (every node count of the default set,
every dp/tp/pp/sequence-parallel layout, micro-batch, schedule and chunks, ZeRO stage and
recomputation) in broadcast calls of the training engine. Against it: a scalar loop over the same
engine (one `evaluate_plans` call per plan) timed on a random sample of the same candidates and
extrapolated to all of them.

Run: PYTHONPATH=backend python benchmarks/bench_plan_search.py [--sample N]
Writes its figures under the "plan_search" key of benchmarks/results.json (other keys untouched).
"""

from __future__ import annotations

import os

# One core: pin the process and keep BLAS single-threaded (the search is element-wise NumPy anyway).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from dse.catalog import default_catalog  # noqa: E402
from dse.catalog.calibration import load_fits  # noqa: E402
from dse.engines.plan_search import SearchSpace, search_plans  # noqa: E402
from dse.engines.plan_search.space import decode_plans, enumerate_layouts, inner_axes  # noqa: E402
from dse.engines.training import ClusterArrays, ModelArrays, PlanArrays, evaluate_plans  # noqa: E402
from dse.scenarios.shared.training_device import DEFAULT_TRAINING_STACK, training_cluster  # noqa: E402
from dse.specs.network import ClusterSpec  # noqa: E402

RESULTS = Path(__file__).with_name("results.json")
CASES = (
    ("GPT-3 175B on 1,024 A100 80GB (128 DGX nodes, NVLink 3, 8x HDR), batch 1536, seq 2048", "gpt3-175b", 128, 1536),
    ("Megatron GPT 1T on 3,072 A100 80GB (384 DGX nodes), batch 3072, seq 2048", "megatron-gpt-1t", 384, 3072),
)
#: A heterogeneous variant of the first case (the mapping search at work): the 128 nodes sit in 4
#: pods listed in a shuffled order, 25 GB/s per GPU inside a pod (one HDR port per GPU) and an
#: illustrative 6 GB/s between pods (an oversubscribed spine), all nodes used.
PODS = 4
CROSS_POD_BYTES_PER_S = 6e9


def _cluster(nodes: int) -> ClusterArrays:
    """The cluster as a plan-search document gets it: the GPU under the default training stack (its kernel fits)."""
    catalog = default_catalog()
    spec = ClusterSpec(
        nodes=nodes,
        gpus_per_node=8,
        accelerator=catalog.get("accelerators", "a100-80gb"),
        intra_node_link=catalog.get("interconnects", "nvlink3"),
        inter_node_link=catalog.get("interconnects", "ib-hdr"),
        inter_node_links_per_node=8,
    )
    return training_cluster(spec, "bf16", catalog.get("stacks", DEFAULT_TRAINING_STACK), load_fits(catalog.root))


def _scalar_loop_seconds_per_plan(
    model: ModelArrays, cluster: ClusterArrays, nodes: int, batch: int, sample: int, seed: int = 0
) -> float:
    """Seconds per plan when each candidate is one engine call with scalar fields."""
    space = SearchSpace()
    layouts = enumerate_layouts(space=space, nodes=nodes, gpus_per_node=8, sequence_parallel=space.sequence_parallel)
    inner = inner_axes(space=space, global_batch_size=batch, num_layers=int(model.num_layers), has_ssd=False)
    ids = np.random.default_rng(seed).integers(0, len(layouts) * inner.size, sample)
    plans, plan_nodes = decode_plans(
        plan_ids=ids, layouts=layouts, inner=inner, global_batch_size=batch, sequence_length=2048, overlap=True
    )
    fields = plans.__dataclass_fields__
    singles = [
        PlanArrays(**{name: float(np.broadcast_to(getattr(plans, name), (sample,))[i]) for name in fields})
        for i in range(sample)
    ]
    start = time.perf_counter()
    for i, plan in enumerate(singles):  # the scalar loop the search replaces
        evaluate_plans(model=model, cluster=_with_nodes(cluster, float(plan_nodes[i])), plan=plan)
    return (time.perf_counter() - start) / sample


def _heterogeneous_case(catalog: Any) -> dict[str, Any]:
    import dataclasses

    label, model_id, nodes, batch = CASES[0]
    pod = np.random.default_rng(0).permutation(nodes) % PODS
    inside = float(_cluster(nodes).inter_node_bandwidth_per_gpu_bytes_per_s)
    matrix = np.where(pod[:, None] == pod[None, :], inside, CROSS_POD_BYTES_PER_S)
    cluster = dataclasses.replace(_cluster(nodes), node_pair_bandwidth_bytes_per_s=matrix)
    model = ModelArrays.from_llm(catalog.get("llms", model_id))
    space = SearchSpace(node_counts=(nodes,))
    out: dict[str, Any] = {"setting": f"{label}; {PODS} shuffled pods, {CROSS_POD_BYTES_PER_S / 1e9:g} GB/s across"}
    for mapped in (False, True):
        start = time.perf_counter()
        result = search_plans(
            model=model,
            cluster=cluster,
            global_batch_size=batch,
            sequence_length=2048,
            space=space,
            search_mapping=mapped,
        )
        wall = time.perf_counter() - start
        key = "with_mapping" if mapped else "given_order"
        out[key] = {
            "candidates_judged": result.candidates,
            "engine_calls": result.engine_calls,
            "node_orders_tried": len(result.node_orders),
            "wall_s": wall,
            "plans_per_s": result.candidates / wall,
            "best_iteration_time_s": float(result.top.evaluation.iteration_time_s[0]),
        }
    out["mapping_speedup"] = out["given_order"]["best_iteration_time_s"] / out["with_mapping"]["best_iteration_time_s"]
    return out


def _with_nodes(cluster: ClusterArrays, nodes: float) -> ClusterArrays:
    import dataclasses

    return dataclasses.replace(cluster, nodes=nodes)


def run(sample: int = 2000, repeats: int = 3) -> dict[str, Any]:
    catalog = default_catalog()
    out: dict[str, Any] = {"cases": []}
    for label, model_id, nodes, batch in CASES:
        model = ModelArrays.from_llm(catalog.get("llms", model_id))
        cluster = _cluster(nodes)
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = search_plans(model=model, cluster=cluster, global_batch_size=batch, sequence_length=2048)
            walls.append(time.perf_counter() - start)
        wall = min(walls)
        per_plan = _scalar_loop_seconds_per_plan(model, cluster, nodes, batch, sample)
        best = result.top
        out["cases"].append(
            {
                "setting": label,
                "candidates_judged": result.candidates,
                "valid_plans_evaluated": result.valid,
                "fitting_plans": result.fitting,
                "pareto_plans": len(result.pareto),
                "engine_calls": result.engine_calls,
                "wall_s_best_of_3": wall,
                "wall_s_each": walls,
                "plans_per_s": result.candidates / wall,
                "valid_plans_per_s": result.valid / wall,
                "scalar_loop_s_per_plan": per_plan,
                "scalar_loop_sample": sample,
                "scalar_loop_extrapolated_s": per_plan * result.candidates,
                "speedup_vs_scalar_loop": per_plan * result.candidates / wall,
                "best_plan": {
                    "gpus": float(best.gpus[0]),
                    "dp_tp_pp": [
                        float(np.asarray(best.plans.data_parallel)[0]),
                        float(np.asarray(best.plans.tensor_parallel)[0]),
                        float(np.asarray(best.plans.pipeline_parallel)[0]),
                    ],
                    "iteration_time_s": float(best.evaluation.iteration_time_s[0]),
                    "memory_gib": float(best.evaluation.memory_total_bytes[0]) / 2**30,
                },
            }
        )
    out["heterogeneous"] = _heterogeneous_case(catalog)
    out["one_core"] = True
    out["machine"] = f"{platform.processor() or platform.machine()}, numpy {np.__version__}, 1 core pinned"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=2000, help="plans timed one at a time for the scalar loop")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    figures = run(args.sample)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["plan_search"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
