"""Old saves open: inline specs (and preset files) written with a spec field's former name, from
before issue 12 gave `kind` one meaning (`AcceleratorSpec.kind` -> `device_class`,
`MemorySpec.kind` / `InterconnectSpec.kind` -> `technology`, `PolicyLayerSpec.kind` -> `layer_type`,
`DegreeSideSpec.kind` -> `law`, `LLMSpec.ffn_kind` / `norm_kind` -> `ffn_activation` / `norm_type`),
parse, pass the document's JSON Schema and evaluate to the same numbers as the new spelling
(dse.catalog.former_names holds the one mapping)."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dse.catalog import default_catalog, load_catalog
from dse.catalog.former_names import FORMER_FIELD_NAMES
from dse.scenarios.documents import document_json, document_model, evaluate_document, parse_document
from dse.scenarios.registry import KINDS

CATALOG = default_catalog()
KIND_EXAMPLES = {name: kind.examples() for name, kind in KINDS.items()}


def _preset(category: str, preset_id: str) -> dict[str, Any]:
    return dataclasses.asdict(CATALOG.get(category, preset_id))


def _former(spec: dict[str, Any], **renames: str) -> dict[str, Any]:
    """`spec` with each current field name (keyword) written under its former name (value)."""
    return {renames.get(key, key): value for key, value in spec.items()}


def _document(kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "kind": kind, "name": "written before the rename", "inputs": inputs}


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(id, document in the new spelling, the same document in the former spelling)."""
    npu, gpu = _preset("accelerators", "neupims-npu"), _preset("accelerators", "a100-80gb")
    memory, llm = _preset("memories", "neupims-hbm-pim"), _preset("llms", "gpt3-7b")
    inference_new = {"model": llm, "accelerator": npu, "memory": memory, "comparison_gpu": gpu, "batch_size": 64}
    inference_old = {
        "model": _former(llm, ffn_activation="ffn_kind", norm_type="norm_kind"),
        "accelerator": _former(npu, device_class="kind"),
        "memory": _former(memory, technology="kind"),
        "comparison_gpu": _former(gpu, device_class="kind"),
        "batch_size": 64,
    }
    workload = _preset("rl_workloads", "carl-carla")
    link, host = _preset("interconnects", "nvlink3"), _preset("interconnects", "pcie4")
    rl_new = {"workload": workload, "accelerator": gpu, "link": link, "host_link": host}
    rl_old = {
        "workload": {
            **workload,
            "policy_layers": [_former(layer, layer_type="kind") for layer in workload["policy_layers"]],
        },
        "accelerator": _former(gpu, device_class="kind"),
        "link": _former(link, technology="kind"),
        "host_link": _former(host, technology="kind"),
    }
    dataset = _preset("graph_datasets", "wikipedia")
    graph_new = {"dataset": dataset, "accelerator": gpu}
    graph_old = {
        "dataset": {
            **dataset,
            "source_side": _former(dataset["source_side"], law="kind"),
            "destination_side": _former(dataset["destination_side"], law="kind"),
        },
        "accelerator": _former(gpu, device_class="kind"),
    }
    training = copy.deepcopy(next(e for e in KIND_EXAMPLES["training"] if isinstance(e["inputs"]["model"], dict)))
    intra, inter = _preset("interconnects", "nvlink3"), _preset("interconnects", "ib-hdr")
    training_new = {
        **training["inputs"],
        "cluster": {**training["inputs"]["cluster"], "intra_node_link": intra, "inter_node_link": inter},
    }
    training_old = {
        **training_new,
        "model": _former(training_new["model"], ffn_activation="ffn_kind", norm_type="norm_kind"),
        "cluster": {
            **training_new["cluster"],
            "accelerator": _former(gpu, device_class="kind"),
            "intra_node_link": _former(intra, technology="kind"),
            "inter_node_link": _former(inter, technology="kind"),
        },
    }
    training_new["cluster"]["accelerator"] = gpu
    return [
        (
            "inference: accelerator, memory, model",
            _document("inference", inference_new),
            _document("inference", inference_old),
        ),
        ("rl_scaling: workload layers, links", _document("rl_scaling", rl_new), _document("rl_scaling", rl_old)),
        (
            "temporal_batching: degree sides",
            _document("temporal_batching", graph_new),
            _document("temporal_batching", graph_old),
        ),
        ("training: model, cluster links", _document("training", training_new), _document("training", training_old)),
    ]


CASES = _cases()


@pytest.mark.parametrize(("new", "old"), [(n, o) for _, n, o in CASES], ids=[c[0] for c in CASES])
def test_a_document_in_the_former_names_evaluates_to_the_same_numbers(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert json.dumps(old).count('"kind"') > 1 or "ffn_kind" in json.dumps(old)  # the old spelling is there
    parsed_old, parsed_new = parse_document(old), parse_document(new)
    assert document_json(parsed_old) == document_json(parsed_new)  # read as the new spelling
    got, want = evaluate_document(parsed_old, CATALOG), evaluate_document(parsed_new, CATALOG)
    assert got.model_dump(mode="json") == want.model_dump(mode="json")


@pytest.mark.parametrize(("new", "old"), [(n, o) for _, n, o in CASES], ids=[c[0] for c in CASES])
def test_the_json_schema_accepts_both_spellings(new: dict[str, Any], old: dict[str, Any]) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = document_model(new["kind"]).model_json_schema()
    validator = jsonschema_rs.validator_for(schema)
    assert validator.is_valid(new)
    assert validator.is_valid(old)


def test_a_field_under_both_names_is_refused() -> None:
    gpu = _preset("accelerators", "a100-80gb")
    both = _document("rl_scaling", {"accelerator": {**gpu, "kind": "gpu"}})
    with pytest.raises(ValidationError, match="former name"):
        parse_document(both)
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    assert not jsonschema_rs.validator_for(document_model("rl_scaling").model_json_schema()).is_valid(both)


def test_preset_files_in_the_former_names_load_the_same(tmp_path: Path) -> None:
    """A models_db/ written before the rename loads into the same specs."""
    root = tmp_path / "models_db"
    shutil.copytree(CATALOG.root, root)
    former = {spec.__name__: renames for spec, renames in FORMER_FIELD_NAMES.items()}
    back = {name: {current: old for old, current in renames.items()} for name, renames in former.items()}
    for path in [*root.glob("accelerators/*.json"), *root.glob("memories/*.json"), *root.glob("interconnects/*.json")]:
        data = json.loads(path.read_text(encoding="utf-8"))
        spec = {"accelerators": "AcceleratorSpec", "memories": "MemorySpec", "interconnects": "InterconnectSpec"}
        path.write_text(json.dumps(_former(data, **back[spec[path.parent.name]])), encoding="utf-8")
    for path in root.glob("llms/*.json"):
        path.write_text(json.dumps(_former(json.loads(path.read_text(encoding="utf-8")), **back["LLMSpec"])))
    for path in root.glob("rl_workloads/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["policy_layers"] = [_former(layer, **back["PolicyLayerSpec"]) for layer in data["policy_layers"]]
        path.write_text(json.dumps(data), encoding="utf-8")
    for path in root.glob("graph_datasets/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for side in ("source_side", "destination_side"):
            if data.get(side):
                data[side] = _former(data[side], **back["DegreeSideSpec"])
        path.write_text(json.dumps(data), encoding="utf-8")
    assert '"kind"' in (root / "accelerators" / "a100-80gb.json").read_text(encoding="utf-8")
    old = load_catalog(root)
    for category in CATALOG.categories:
        assert old.items(category) == CATALOG.items(category), category
