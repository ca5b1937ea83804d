"""A malformed preset file fails at load, naming the file, the field and the reason."""

from __future__ import annotations

import json
import shutil

import pytest

from dse.catalog import CatalogError, default_catalog, load_catalog


@pytest.fixture
def catalog_copy(tmp_path):
    root = tmp_path / "models_db"
    shutil.copytree(default_catalog().root, root)
    return root


def _edit(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_wrong_type_names_file_and_field(catalog_copy):
    path = catalog_copy / "llms" / "llama2-7b.json"
    _edit(path, hidden_size="wide")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_copy)
    assert err.value.path == path and err.value.field == "hidden_size"


def test_negative_bandwidth_is_refused(catalog_copy):
    path = catalog_copy / "accelerators" / "h100-sxm.json"
    _edit(path, memory_bandwidth_bytes_per_s=-1)
    with pytest.raises(CatalogError, match="memory_bandwidth_bytes_per_s"):
        load_catalog(catalog_copy)


def test_unknown_field_and_missing_source(catalog_copy):
    path = catalog_copy / "llms" / "gpt3-7b.json"
    _edit(path, hidden_sise=1)
    with pytest.raises(CatalogError, match="hidden_sise"):
        load_catalog(catalog_copy)
    _edit(path)
    data = json.loads(path.read_text())
    del data["hidden_sise"]
    data["source"] = " "
    path.write_text(json.dumps(data))
    with pytest.raises(CatalogError, match="source"):
        load_catalog(catalog_copy)


def test_invalid_json_and_id_mismatch(catalog_copy):
    (catalog_copy / "llms" / "broken.json").write_text("{ nope")
    with pytest.raises(CatalogError, match=r"broken\.json.*invalid JSON"):
        load_catalog(catalog_copy)
    (catalog_copy / "llms" / "broken.json").write_text(
        json.dumps(json.loads((catalog_copy / "llms" / "gpt3-7b.json").read_text()))
    )
    with pytest.raises(CatalogError, match="id"):
        load_catalog(catalog_copy)


def test_every_preset_cites_a_source():
    catalog = default_catalog()
    for category in catalog.categories:
        for spec in catalog.items(category):
            assert spec.source.strip(), (category, spec.id)
