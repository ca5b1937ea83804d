"""Plan search: the fastest parallel training plans that fit a model on a cluster (Pipette-style),
every candidate evaluated by the vectorised training engine.

Entry point: `search_plans(model=ModelArrays, cluster=ClusterArrays, global_batch_size=B, sequence_length=s)`.
"""

from dse.engines.plan_search.mapping import candidate_orders, greedy_chain, permuted
from dse.engines.plan_search.search import RankedPlans, SearchResult, pareto_mask, search_plans
from dse.engines.plan_search.space import SearchSpace, divisors

__all__ = [
    "RankedPlans",
    "SearchResult",
    "SearchSpace",
    "candidate_orders",
    "divisors",
    "greedy_chain",
    "pareto_mask",
    "permuted",
    "search_plans",
]
