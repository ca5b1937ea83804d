"""Plan search: the fastest parallel training plans that fit a model on a cluster (Pipette-style),
every candidate evaluated by the vectorised training engine.

Entry point: `search_plans(model=ModelArrays, cluster=ClusterArrays, global_batch_size=B, sequence_length=s)`.
"""

from dse.engines.plan_search.mapping import candidate_orders, greedy_chain, permuted
from dse.engines.plan_search.search import RankedPlans, SearchResult, SearchStopped, pareto_mask, search_plans
from dse.engines.plan_search.space import SearchSpace, count_candidates, divisors

__all__ = [
    "RankedPlans",
    "SearchResult",
    "SearchSpace",
    "SearchStopped",
    "candidate_orders",
    "count_candidates",
    "divisors",
    "greedy_chain",
    "pareto_mask",
    "permuted",
    "search_plans",
]
