"""Alembic environment for the scenario store.

`dse.store.database.migrate` runs it through Alembic's Python API with `script_location` set to
this folder and an open connection in `config.attributes["connection"]`, so no alembic.ini is
needed. Given only `sqlalchemy.url` instead (e.g. from a developer's own Config), it connects itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from dse.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()
