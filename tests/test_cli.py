"""The `dse` command line: evaluate, sweep, catalog, examples."""

from __future__ import annotations

import json

import pytest

from dse.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_examples_then_evaluate_each(capsys, tmp_path):
    code, out, _ = _run(capsys, "examples")
    examples = json.loads(out)
    assert code == 0 and {e["kind"] for e in examples} >= {"inference", "training", "pruning"}
    for index, example in enumerate(examples):
        path = tmp_path / f"{index}.json"
        path.write_text(json.dumps(example))
        code, out, err = _run(capsys, "evaluate", str(path))
        assert code == 0, (example["name"], err)
        result = json.loads(out)
        assert result["kind"] == example["kind"] and result["metrics"]


def test_sweep_prints_a_grid(capsys, tmp_path):
    code, out, _ = _run(capsys, "examples")
    example = next(e for e in json.loads(out) if e["kind"] == "inference")
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(example))
    code, out, err = _run(capsys, "sweep", str(path), "--axis", "batch_size=1,2,4")
    assert code == 0, err
    assert json.loads(out)["shape"] == [3]


def test_bad_document_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema_version": 1, "kind": "inference", "name": "x", "inputs": {"batch_sise": 1}}))
    code, _, err = _run(capsys, "evaluate", str(path))
    assert code == 2 and "batch_sise" in err


def test_catalog_lists_categories(capsys):
    code, out, _ = _run(capsys, "catalog")
    assert code == 0 and "gpt3-30b" in json.loads(out)["llms"]
    code, out, _ = _run(capsys, "catalog", "accelerators")
    assert any(a["id"] == "h100-sxm" for a in json.loads(out))


def test_unknown_command_exits_nonzero(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])


def test_validation_summary_prints_the_mean_absolute_error_table(capsys):
    code, out, _ = _run(capsys, "validation-summary")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("| engine | group (kind/accelerator/dtype) | figures | mean abs error")
    assert any(line.startswith("| training | **all** |") for line in lines)
    assert any(line.startswith("| inference | H100/fp16 |") for line in lines)
    code, out, _ = _run(capsys, "validation-summary", "--json")
    rows = json.loads(out)
    assert code == 0 and {"kind", "group", "figures", "mean_abs_error", "known_misses"} <= set(rows[0])
    assert len(rows) == len(lines) - 2
