"""The application factory: one router per resource under /api/v1, problem+json errors."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from dse import __version__
from dse.api.cpu import close_cpu_pool, install_cpu_pool, warm_bands
from dse.api.middleware import BodyLimitMiddleware, RateLimitMiddleware, SecurityHeadersMiddleware, TokenBuckets
from dse.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from dse.api.routers import calibration, dashboard, evaluate, jobs, meta, pages, reports, scenarios, validation
from dse.api.routers import catalog as catalog_routes
from dse.catalog import Catalog, default_catalog
from dse.scenarios.documents import document_union
from dse.settings import Settings, get_settings
from dse.store import Store, StoreError

API_PREFIX = "/api/v1"
logger = logging.getLogger("dse.api")


def freeze_startup_objects() -> None:
    """Moves every object built at start (modules, the catalog, the app, the band tables: hundreds of
    thousands, alive for the whole process) out of the garbage collector's reach (`gc.freeze`).

    A full collection walks every tracked object while holding the GIL: with them it stopped every request
    of the process for 70-300 ms a few times in each load test's first seconds (measured with
    `gc.callbacks`). Frozen, a full collection walks only what requests left behind."""
    gc.collect()
    gc.freeze()


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings | None = None, catalog: Catalog | None = None, *, start_processes: bool = False
) -> FastAPI:
    """The app; `start_processes` starts the heavy worker processes with it (a server does; tests
    start them on the first heavy request)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.catalog = catalog or default_catalog()
        try:
            app.state.store = Store(settings.database_url, check_integrity=settings.store_integrity_check)
        except StoreError as exc:  # a damaged file, a newer schema, an unreachable server: say so, don't start
            logger.critical("cannot start: %s", exc)
            raise
        app.state.health_limiter = anyio.CapacityLimiter(1)
        install_cpu_pool(app, app.state.catalog, start_processes=start_processes)
        if start_processes:  # a server answers once its error-band tables are built (dse.api.cpu.warm_bands)
            started = time.monotonic()
            await anyio.to_thread.run_sync(warm_bands, app)
            logger.info("error-band tables ready in %.1f s", time.monotonic() - started)
            freeze_startup_objects()
        try:
            yield
        finally:
            close_cpu_pool(app)
            app.state.store.dispose()

    app = FastAPI(
        title="ML-systems design-space explorer",
        version=__version__,
        description="What-if answers about ML workloads on hardware: analytical engines, sweeps, saved scenarios.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by routers/meta.py from local files, under the app's CSP
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.save_quota = TokenBuckets(
        settings.save_quota_per_day / (24 * 60), max(1, settings.save_quota_per_day), settings.rate_limit_clients
    )
    install_problem_handlers(app)
    document_type = document_union()
    app.include_router(meta.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(catalog_routes.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(evaluate.build_router(document_type), prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(scenarios.build_router(document_type), prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(reports.build_router(document_type), prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(validation.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(calibration.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(dashboard.build_router(document_type), prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(jobs.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(pages.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
        max_containers=settings.max_json_containers,
        max_strings=settings.max_json_strings,
    )
    # Outside the body limit: a client over its rate is refused before its body is read.
    app.add_middleware(
        RateLimitMiddleware,
        writes=TokenBuckets(settings.write_rate_per_minute, settings.write_burst, settings.rate_limit_clients),
        evaluations=TokenBuckets(
            settings.evaluation_rate_per_minute, settings.evaluation_burst, settings.rate_limit_clients
        ),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def create_served_app() -> FastAPI:
    """The app one server process runs (`dse serve`, also each of `--workers N`): settings from the
    environment, heavy worker processes started with it."""
    return create_app(start_processes=True)
