"""Prints benchmarks/results.json as the Markdown table quoted in the README.

python -m benchmarks.summary
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M/s" if value >= 1e6 else f"{value:,.0f}/s"


def rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    inference = results.get("inference", {})
    if inference:
        gpu, neupims = inference["gpu_only_points_per_s"], inference["neupims_even_split_points_per_s"]
        out.append(
            (
                "inference: batch x prompt-length grid, `gpu_only` / `neupims` (design points)",
                f"{_rate(gpu)} / {_rate(neupims)}",
            )
        )
        if "api_evaluation" in inference:
            api = inference["api_evaluation"]
            out.append(
                (
                    "inference: one evaluation through the API (POST /api/v1/evaluate, median / best)",
                    f"{api['median_s'] * 1e3:.1f} ms / {api['best_s'] * 1e3:.1f} ms",
                )
            )
    training = results.get("training", {})
    if training:
        out.append(("training: random plans, one `evaluate_plans` call (plans)", _rate(training["plans_per_s"])))
    for case in results.get("plan_search", {}).get("cases", []):
        out.append(
            (
                f"plan search: {case['setting']}",
                f"{case['candidates_judged']:,} plans in {case['wall_s_best_of_3']:.2f} s = "
                f"{_rate(case['plans_per_s'])} ({case['speedup_vs_scalar_loop']:,.0f}x a scalar loop)",
            )
        )
    rl = results.get("rl_gnn", {})
    if rl:
        out.append(("rl_scaling: GPUs x minibatch grid (points)", _rate(rl["ppo_points_per_s"])))
        out.append(("temporal_batching: batch-time model (points)", _rate(rl["temporal_batch_time_points_per_s"])))
    pruning = results.get("pruning", {})
    if pruning:
        out.append(
            (
                "pruning: UNet MAC counter, resolution x keep-fraction grid (points)",
                _rate(pruning["counter_grid_points_per_s"]),
            )
        )
        out.append(("pruning: Sinkhorn routing problems", _rate(pruning["sinkhorn_problems_per_s"])))
    for name, seconds in results.get("questions", {}).get("evaluate_s", {}).items():
        out.append((f"one full evaluation: {name.split('?')[0]}?", f"{seconds * 1e3:.1f} ms"))
    dashboard = results.get("dashboard", {})
    if dashboard:
        first = ", ".join(f"{v:.0f}" for v in dashboard["plan_search_median_first_numbers_ms"].values())
        out.append(
            (
                "dashboard: edit -> updated numbers / charts, inference page (Chromium, median)",
                f"{dashboard['inference_median_numbers_ms']:.0f} ms / {dashboard['inference_median_charts_ms']:.0f} ms",
            )
        )
        out.append(("dashboard: edit -> first numbers, plan search page (quick pass; two examples)", f"{first} ms"))
    examples = results.get("examples_cpu", {}).get("examples", {})
    if examples:
        cheap = [row["quick_ms"] for row in examples.values() if not row["heavy"]]
        passes = [row["quick_pass_ms"] for row in examples.values() if "quick_pass_ms" in row]
        over = len(results["examples_cpu"]["over_target"])
        out.append(
            (
                "home-page examples, server CPU of a quick answer: closed-form kinds (target 10 ms) / "
                "plan-search quick passes (target 100 ms), median of each example, range",
                f"{min(cheap):.1f}-{max(cheap):.1f} ms ({over} over) / {min(passes):.0f}-{max(passes):.0f} ms",
            )
        )
    load = results.get("load", {})
    if load:
        out.append(("HTTP load test (see Reliability)", json.dumps(load)[:120]))
    return out


def main() -> None:
    results = json.loads(RESULTS.read_text())
    print("| benchmark | figure |\n| --- | --- |")
    for name, figure in rows(results):
        print(f"| {name} | {figure} |")


if __name__ == "__main__":
    main()
