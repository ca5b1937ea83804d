"""Sweep jobs: a grid too large for one request, split into shards that run on Dask and merge in any order.

- `grid`: the job's grid, its shards, and `evaluate_shard` (plain data in, a summary out; this is what
  a Dask worker runs, and it needs only dse.scenarios, dse.catalog and the engines).
- `summary`: a shard's summary and `merge`, associative and commutative, so shards merge in any order.
- `executor`: the Dask client (an embedded LocalCluster, or DSE_DASK_SCHEDULER) and a serial one.
- `service`: jobs in the store (queued/running/done/cancelled/failed), run in the background, resumed
  after a restart from the shards already merged.
- `solve`: the smallest value of one input that meets a target, by vectorised bisection.

This package's __init__ imports nothing, so a worker unpickling `grid.evaluate_shard` loads no store
or web code.
"""
