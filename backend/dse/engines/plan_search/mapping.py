"""Which physical node hosts which logical node of a plan (Pipette's mapping problem).

The training engine lays ranks out tp -> sequence / context -> dp -> pp (Megatron-LM; context-parallel ranks sit
where Ring/Ulysses ranks do, Megatron-Core's tp-cp-dp-pp order), so logical node i
holds a fixed set of (pipeline stage, data-parallel group) ranks; a mapping is a node order:
logical node i runs on physical node order[i]. Permuting the measured bandwidth matrix by the
order is all the engine needs (`matrix[order][:, order]`). On a cluster whose links are all equal
every order gives the same time; on an uneven one the order decides which groups' rings cross the
slow links.

Candidate orders: the given order; a greedy chain that always steps to the fastest-linked unused
node (it walks through a fast island before jumping, so consecutive nodes, i.e. data-parallel
blocks, share islands); that chain's islands interleaved (so nodes a stage apart share an island
and the data-parallel rings take the slow links instead); and a seeded hill-climb of node swaps
started from the best of these (Pipette searches the mapping by simulated annealing; a bounded
first-improvement climb is its deterministic cousin).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
Matrix = NDArray[np.float64]


def permuted(matrix: Matrix, order: IntArray) -> Matrix:
    """The bandwidth matrix as the plan's logical nodes see it under `order`."""
    return np.asarray(matrix[np.ix_(order, order)])


def greedy_chain(matrix: Matrix) -> IntArray:
    """Start at the best-connected node, then repeatedly append the unused node with the fastest
    link to the last one. A loop over nodes of one cluster (hundreds at most)."""
    symmetric = np.minimum(matrix, matrix.T).astype(np.float64)
    np.fill_diagonal(symmetric, -np.inf)
    nodes = symmetric.shape[0]
    used = np.zeros(nodes, dtype=bool)
    current = int(np.argmax(np.where(np.isfinite(symmetric), symmetric, 0.0).sum(axis=1)))
    order = [current]
    used[current] = True
    for _ in range(nodes - 1):
        row = np.where(used, -np.inf, symmetric[current])
        current = int(np.argmax(row))
        order.append(current)
        used[current] = True
    return np.asarray(order, dtype=np.int64)


def islands_interleaved(matrix: Matrix, chain: IntArray) -> IntArray:
    """Split the chain where a link is slower than half its fastest link (island boundaries) and
    deal the islands' nodes out round-robin."""
    steps = matrix[chain[:-1], chain[1:]]
    if steps.size == 0:
        return chain
    cuts = np.flatnonzero(steps < 0.5 * steps.max()) + 1
    islands = np.split(chain, cuts)
    if len(islands) < 2:
        return chain
    width = max(len(i) for i in islands)
    padded = np.full((len(islands), width), -1, dtype=np.int64)
    for row, island in enumerate(islands):  # a loop over islands
        padded[row, : len(island)] = island
    dealt = padded.T.reshape(-1)
    return np.asarray(dealt[dealt >= 0], dtype=np.int64)


def candidate_orders(matrix: Matrix) -> list[IntArray]:
    """The given order, the greedy chain and its islands interleaved, without duplicates."""
    identity = np.arange(matrix.shape[0], dtype=np.int64)
    chain = greedy_chain(matrix)
    orders: list[IntArray] = []
    for order in (identity, chain, islands_interleaved(matrix, chain)):
        if not any(np.array_equal(order, seen) for seen in orders):
            orders.append(order)
    return orders


def swap_pair(size: int, rng: np.random.Generator) -> IntArray:
    """Two distinct positions of an order of `size` nodes, drawn for one hill-climb proposal."""
    pair: IntArray = rng.choice(size, size=2, replace=False)
    return pair


def swap(order: IntArray, pair: IntArray) -> IntArray:
    """`order` with the nodes at the two positions of `pair` exchanged."""
    i, j = pair
    out = order.copy()
    out[[i, j]] = out[[j, i]]
    return out
