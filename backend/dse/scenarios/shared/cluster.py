"""The cluster a training plan runs on (training, plan_search): its inputs and how they resolve.

`ClusterInputs` is the `cluster` object of both kinds' documents; `resolve_cluster` turns it into a
`ClusterSpec` (presets looked up, the accelerator's default intra-node link, the measured node-pair
matrix in bytes/s), raising `InputError` naming `cluster.*`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dse.catalog import Catalog
from dse.scenarios.base import InputError, StrictModel
from dse.scenarios.presets import preset_or_inline
from dse.scenarios.shared.bounds import (
    MAX_BANDWIDTH_GB_PER_S,
    MAX_CLUSTER_GPUS,
    MAX_GPUS_PER_NODE,
    MAX_NODES,
    MAX_PER_NODE_DEVICES,
    MIN_BANDWIDTH_GB_PER_S,
)
from dse.specs.hardware import AcceleratorSpec
from dse.specs.network import ClusterSpec, InterconnectSpec, SSDSpec

GB = 1e9
#: Rows (and columns) a measured node-pair matrix may have: the body limit caps it well below MAX_NODES anyway.
MAX_MATRIX_NODES = 1024
Bandwidth = Annotated[float, Field(ge=MIN_BANDWIDTH_GB_PER_S, le=MAX_BANDWIDTH_GB_PER_S)]


class ClusterInputs(StrictModel):
    nodes: int = Field(1, ge=1, le=MAX_NODES, title="Nodes", description="Nodes in the cluster.")
    gpus_per_node: int = Field(8, ge=1, le=MAX_GPUS_PER_NODE, title="GPUs per node", description="GPUs per node.")
    accelerator: str | AcceleratorSpec = Field(
        "a100-80gb", title="Accelerator", description="Accelerator preset id or inline spec."
    )
    intra_node_link: str | InterconnectSpec | None = Field(
        None,
        title="Intra-node link",
        description="Link between GPUs of a node; none: the accelerator preset's own (intra_node_link_id).",
    )
    inter_node_link: str | InterconnectSpec = Field(
        "ib-hdr", title="Network port", description="Network port of a node."
    )
    inter_node_links_per_node: int = Field(
        8, ge=1, le=MAX_PER_NODE_DEVICES, title="Network ports per node", description="Network ports per node."
    )
    ssd: str | SSDSpec | None = Field(
        None, title="SSD", description="SSD preset for activation offload (none: no drives)."
    )
    ssds_per_node: int = Field(
        0, ge=0, le=MAX_PER_NODE_DEVICES, title="SSDs per node", description="Drives per node (striped, RAID0)."
    )
    node_pair_bandwidth_gb_per_s: list[list[Bandwidth]] | None = Field(
        None,
        max_length=MAX_MATRIX_NODES,
        title="Node-pair bandwidth",
        description="Measured per-GPU bandwidth between nodes i and j, GB/s (nodes x nodes); a heterogeneous cluster.",
    )

    @property
    def has_ssds(self) -> bool:
        """Whether the nodes carry drives for activation offload."""
        return self.ssd is not None and self.ssds_per_node > 0


def resolve_ssd(c: ClusterInputs, catalog: Catalog) -> SSDSpec | None:
    """The drive preset (or inline spec) of the nodes; None without drives."""
    return None if c.ssd is None else preset_or_inline(catalog, "ssds", c.ssd, "cluster.ssd")


def resolve_cluster(c: ClusterInputs, catalog: Catalog, *, ssd: SSDSpec | None = None) -> ClusterSpec:
    """The cluster with its presets looked up (`ssd`: the drive already resolved by `resolve_ssd`)."""
    if c.nodes * c.gpus_per_node > MAX_CLUSTER_GPUS:
        raise InputError(
            "cluster.nodes", f"{c.nodes} x {c.gpus_per_node} GPUs exceeds the largest cluster ({MAX_CLUSTER_GPUS} GPUs)"
        )
    if ssd is None:
        ssd = resolve_ssd(c, catalog)
    matrix = None
    if c.node_pair_bandwidth_gb_per_s is not None:
        rows = c.node_pair_bandwidth_gb_per_s
        if len(rows) != c.nodes or any(len(row) != c.nodes for row in rows):
            raise InputError("cluster.node_pair_bandwidth_gb_per_s", f"must be a {c.nodes} x {c.nodes} matrix")
        matrix = tuple(tuple(x * GB for x in row) for row in rows)
    accelerator: AcceleratorSpec = preset_or_inline(catalog, "accelerators", c.accelerator, "cluster.accelerator")
    link = c.intra_node_link if c.intra_node_link is not None else accelerator.intra_node_link_id
    if link is None:
        raise InputError("cluster.intra_node_link", f"{accelerator.id} names no default link; give one")
    return ClusterSpec(
        nodes=c.nodes,
        gpus_per_node=c.gpus_per_node,
        accelerator=accelerator,
        intra_node_link=preset_or_inline(catalog, "interconnects", link, "cluster.intra_node_link"),
        inter_node_link=preset_or_inline(catalog, "interconnects", c.inter_node_link, "cluster.inter_node_link"),
        inter_node_links_per_node=c.inter_node_links_per_node,
        ssd=ssd,
        ssds_per_node=c.ssds_per_node,
        node_pair_bandwidth_bytes_per_s=matrix,
    )
