"""Request dependencies: the store and the catalog held by the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dse.catalog import Catalog
from dse.store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


StoreDep = Annotated[Store, Depends(get_store)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
