"""Interconnects, SSDs and clusters: what a parallel training plan runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dse.specs.common import NonNegativeFloat, PositiveFloat, PositiveInt
from dse.specs.hardware import AcceleratorSpec


@dataclass(frozen=True)
class InterconnectSpec:
    """One link class (a GPU's NVLink port group, a PCIe slot, an InfiniBand port).

    `bandwidth_per_direction_bytes_per_s` is what one endpoint can send while it receives as much
    (half the bidirectional figure datasheets quote); `latency_s` is the per-step latency a ring
    collective pays on this link class.
    """

    id: str
    name: str
    source: str
    #: The link technology.
    technology: Literal["nvlink", "pcie", "infiniband", "infinity-fabric"]
    bandwidth_per_direction_bytes_per_s: PositiveFloat
    latency_s: NonNegativeFloat
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)
    #: Share of `bandwidth_per_direction_bytes_per_s` a large NCCL ring collective reaches on this link
    #: (its bus bandwidth over the nominal); 1.0 where no sourced figure is known.
    bus_bandwidth_fraction: PositiveFloat = 1.0
    #: A network link only: the least a multi-node ring's intra-node step costs, NCCL's host proxy overhead
    #: (3 x getNetOverhead() for the Simple protocol: 1 us x 3 on Intel hosts, 2 us x 3 on AMD hosts; NVIDIA/nccl
    #: src/graph/tuning.cc @ b6475625f). Set per network preset from the host CPU of the system it describes.
    ring_step_overhead_s: NonNegativeFloat = 0.0


@dataclass(frozen=True)
class SSDSpec:
    """One NVMe drive: sequential bandwidths, capacity and rated endurance."""

    id: str
    name: str
    source: str
    read_bandwidth_bytes_per_s: PositiveFloat
    write_bandwidth_bytes_per_s: PositiveFloat
    capacity_bytes: PositiveFloat
    #: Rated drive writes per day over the warranty period.
    endurance_drive_writes_per_day: PositiveFloat
    warranty_years: PositiveFloat
    notes: str = ""
    field_sources: dict[str, str] = field(default_factory=dict)

    @property
    def endurance_bytes_written(self) -> float:
        """Total bytes the drive is rated to absorb: DWPD x capacity x warranty days."""
        return self.endurance_drive_writes_per_day * self.capacity_bytes * self.warranty_years * 365.0


@dataclass(frozen=True)
class ClusterSpec:
    """Nodes of identical GPUs: an intra-node link per GPU, network ports per node, optional SSDs.

    `node_pair_bandwidth_bytes_per_s`, when given, is a nodes x nodes matrix of measured per-GPU
    bandwidths between nodes (a heterogeneous cluster, as Pipette measures it); it replaces the
    nominal inter-node bandwidth for collectives that cross nodes.
    """

    nodes: PositiveInt
    gpus_per_node: PositiveInt
    accelerator: AcceleratorSpec
    intra_node_link: InterconnectSpec
    inter_node_link: InterconnectSpec
    #: Network ports (NICs) per node; a GPU's share of the node's network is ports/GPUs.
    inter_node_links_per_node: PositiveInt
    ssd: SSDSpec | None = None
    ssds_per_node: int = 0
    node_pair_bandwidth_bytes_per_s: tuple[tuple[float, ...], ...] | None = None

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def inter_node_bandwidth_per_gpu_bytes_per_s(self) -> float:
        """A GPU's share of its node's network bandwidth, per direction."""
        return (
            self.inter_node_link.bandwidth_per_direction_bytes_per_s
            * self.inter_node_links_per_node
            / self.gpus_per_node
        )
