"""Shared test setup: an app on a throwaway SQLite store, with the toy kind registered."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dse.api.app import create_app
from dse.scenarios.documents import document_model
from dse.scenarios.registry import KINDS, register
from dse.settings import Settings
from tests.support.toy_kind import TOY


@pytest.fixture
def toy_kind():
    register(TOY)
    document_model.cache_clear()
    yield TOY
    KINDS.pop(TOY.kind, None)
    document_model.cache_clear()


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**settings_overrides):
        url = settings_overrides.pop("database_url", f"sqlite:///{tmp_path / 'store.sqlite3'}")
        app = create_app(Settings(database_url=url, **settings_overrides))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def toy_client(toy_kind, make_client):
    return make_client()
