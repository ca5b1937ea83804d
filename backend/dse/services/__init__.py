"""What the API does, without HTTP: evaluation (with the result cache), validation, reports, the catalog.

Routers in `dse.api.routers` parse a request, call one function here and respond; they never import
each other. These services sit between the API and `dse.scenarios` / `dse.store` (an import-linter
`layers` contract in pyproject.toml keeps the order).
"""
