"""Request dependencies: the store and the catalog held by the app, and the save quota."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dse.api.middleware import TokenBuckets, client_of, retry_after
from dse.api.problems import TooManyRequests
from dse.catalog import Catalog
from dse.store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


class SaveQuota:
    """New scenarios a client may still save: a bucket of `save_quota_per_day`, refilled evenly.

    `check()` refuses (429) a client whose quota is spent; `spend()` after a save that created a
    scenario (a named copy of saved inputs included) takes one. Saving again a scenario of one's own
    (its owner token shown) creates nothing, costs nothing and is never refused.
    """

    def __init__(self, buckets: TokenBuckets, client: str) -> None:
        self.buckets, self.client = buckets, client

    def spent(self) -> bool:
        return self.buckets.wait_s(self.client) > 0

    def check(self) -> None:
        wait = self.buckets.wait_s(self.client)
        if wait > 0:
            per_day = round(self.buckets.burst)
            raise TooManyRequests(
                f"save quota reached: at most {per_day} new scenarios a day from one client; "
                f"the next one in {retry_after(wait)} s",
                int(retry_after(wait)),
            )

    def spend(self) -> None:
        self.buckets.spend(self.client)


def get_save_quota(request: Request) -> SaveQuota:
    return SaveQuota(request.app.state.save_quota, client_of(request.scope))


StoreDep = Annotated[Store, Depends(get_store)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SaveQuotaDep = Annotated[SaveQuota, Depends(get_save_quota)]
