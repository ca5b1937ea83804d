"""Property (Hypothesis, so in the full tier): any JSON document the store saves reads back exactly,
on SQLite and on PostgreSQL (see conftest.py). Its own module so that the fast tier, which leaves
this module out, does not import Hypothesis."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.store import Store, scenario_id_for

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)  # any code point but lone surrogates, NUL included
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    inputs=st.dictionaries(st.text(max_size=8), _json_values, max_size=5),
    name=st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
    ),  # names may not hold NUL
)
def test_any_json_document_reads_back_as_saved(store: Store, inputs: dict[str, Any], name: str) -> None:
    """Property: whatever JSON the inputs hold (unicode, NUL, big integers, extreme floats), `get`
    returns it exactly, with the content id `scenario_id_for` predicts."""
    document = {"schema_version": 1, "kind": "inference", "name": name, "inputs": inputs}
    saved = store.save(document)
    read = store.get(saved.record.id)
    assert read == saved.record and read.content_id == scenario_id_for(document)
    assert read.document == document
