"""A "training" scenario document written by another kind (plan_search: "open this plan as a
training scenario"), as a plain dict: no kind imports another, the document is the interface."""

from __future__ import annotations

from typing import Any


def training_document(
    *,
    name: str,
    model: Any,
    cluster: dict[str, Any],
    global_batch_size: int,
    sequence_length_tokens: int,
    plan: dict[str, Any],
    overlap_grad_reduce: bool,
    dtype: str,
    software_stack: Any = None,
    tp_comm_overlap: bool = False,
    zero3_runtime: str = "fsdp",
    expert_comm_overlap: bool = False,
    overlap_param_gather: bool = False,
) -> dict[str, Any]:
    """{schema_version, kind "training", name, inputs}: `model` a preset id or an inline spec (as
    JSON), `cluster` the `ClusterInputs` fields as JSON, `plan` the training inputs of one plan
    (data_parallel, tensor_parallel, ..., activation_offload), `software_stack` a preset id, an inline spec
    (as JSON) or None (the roofline)."""
    inputs = {
        "model": model,
        "cluster": cluster,
        "global_batch_size": int(global_batch_size),
        "sequence_length_tokens": int(sequence_length_tokens),
        **plan,
        "overlap_grad_reduce": overlap_grad_reduce,
        "dtype": dtype,
        "software_stack": software_stack,
        **({"tp_comm_overlap": True} if tp_comm_overlap else {}),
        **({"zero3_runtime": zero3_runtime} if zero3_runtime != "fsdp" else {}),
        **({"expert_comm_overlap": True} if expert_comm_overlap else {}),
        **({"overlap_param_gather": True} if overlap_param_gather else {}),
    }
    return {"schema_version": 1, "kind": "training", "name": name, "inputs": inputs}
