"""The links of data-parallel attention's expert all-to-alls, from the catalog (inference and serving kinds)."""

from __future__ import annotations

from typing import Protocol

from dse.catalog import Catalog
from dse.engines.decoder_ops import ExpertExchange
from dse.scenarios.base import InputError, applies_when, at_least
from dse.scenarios.presets import preset_or_inline
from dse.specs.hardware import AcceleratorSpec
from dse.specs.network import InterconnectSpec

#: DeepSeek-V3's dispatch in fp8: one byte per element and an fp32 scale per 128 (arXiv:2412.19437 Section 3.3.2;
#: the DeepEP kernels' FP8 dispatch); its combine stays BF16 (Section 3.3.3).
FP8_DISPATCH_BYTES_PER_ELEMENT = 1.0 + 4.0 / 128.0
BF16_COMBINE_BYTES_PER_ELEMENT = 2.0

#: The form's rule for the inputs only data-parallel attention reads (exchange_of ignores them below DP 2).
DP_ATTENTION_ONLY = applies_when(
    "only data-parallel attention (DP 2 or more) sends expert all-to-alls", attention_data_parallel=at_least(2)
)


def expert_exchange(
    catalog: Catalog,
    accelerator: AcceleratorSpec,
    *,
    network: str | InterconnectSpec,
    gpus_per_node: int,
    activation_dtype: str,
    stored_activation_bytes: float,
    node_limit: int,
    two_batch_overlap: bool,
) -> ExpertExchange:
    """The links of the expert all-to-alls: the accelerator's NVLink within a node, the network port across.
    fp8 activations dispatch in fp8 and combine in bf16 (DeepSeek-V3); others send the stored activations."""
    if accelerator.intra_node_link_id is None:
        raise InputError("accelerator", f"'{accelerator.id}' names no intra-node link for the expert all-to-alls")
    nvlink: InterconnectSpec = preset_or_inline(catalog, "interconnects", accelerator.intra_node_link_id, "accelerator")
    port: InterconnectSpec = preset_or_inline(catalog, "interconnects", network, "network")
    fp8 = activation_dtype == "fp8"
    return ExpertExchange(
        ranks_per_node=float(gpus_per_node),
        nvlink_bandwidth_bytes_per_s=nvlink.bandwidth_per_direction_bytes_per_s,
        network_bandwidth_bytes_per_s=port.bandwidth_per_direction_bytes_per_s,
        dispatch_bytes_per_element=FP8_DISPATCH_BYTES_PER_ELEMENT if fp8 else stored_activation_bytes,
        combine_bytes_per_element=BF16_COMBINE_BYTES_PER_ELEMENT if fp8 else stored_activation_bytes,
        node_limit=float(node_limit),
        two_batch_overlap=two_batch_overlap,
    )


class ExchangeInputs(Protocol):
    """The inputs of a kind that lays out data-parallel attention with expert parallelism (inference, serving)."""

    @property
    def attention_data_parallel(self) -> int: ...
    @property
    def network(self) -> str | InterconnectSpec: ...
    @property
    def gpus_per_node(self) -> int: ...
    @property
    def activation_dtype(self) -> str: ...
    @property
    def expert_node_limit(self) -> int: ...
    @property
    def two_batch_overlap(self) -> bool: ...


def exchange_of(
    inputs: ExchangeInputs, catalog: Catalog, accelerator: AcceleratorSpec, stored_activation_bytes: float
) -> ExpertExchange | None:
    """The expert all-to-alls of a document's layout: None without data-parallel attention (EP stays in the
    tensor-parallel group, no all-to-all)."""
    if inputs.attention_data_parallel <= 1:
        return None
    return expert_exchange(
        catalog,
        accelerator,
        network=inputs.network,
        gpus_per_node=inputs.gpus_per_node,
        activation_dtype=inputs.activation_dtype,
        stored_activation_bytes=stored_activation_bytes,
        node_limit=inputs.expert_node_limit,
        two_batch_overlap=inputs.two_batch_overlap,
    )
