"""Published figures of the serving kind.

vLLM's paper (Kwon et al., SOSP'23) states, for its server configurations (Table 1), how many tokens the paged
KV cache holds beside the weights; the engine computes the same from the model, the device and vLLM's then
default gpu_memory_utilization of 0.9 (the share of device memory the server takes). OPT-13B and OPT-175B have
GPT-3's shapes (Zhang et al., 2022, Table 1: 40 layers / 5120 / 40 heads; 96 / 12288 / 96), the catalog's
gpt3-13b and gpt3-175b (the vocabularies differ by 15 rows). vLLM profiles the activation memory and gives
the KV cache what remains up to its utilisation share; the engine reserves no activation memory, so a few
per cent either way is the mechanism's reach, not a fit.

Latency and goodput under load (vLLM's Figure 12, DistServe's and Sarathi-Serve's capacity plots) are
published as curves without the numbers; none is recorded yet. The internal consistency checks (a decode
iteration of the table equals the inference engine's decode step, dense and MoE/MLA; saturated throughput is
B * tokens per step / T) live in tests/engines/test_serving.py.
"""

from __future__ import annotations

from functools import partial

from dse.catalog import Catalog
from dse.engines.serving import BLOCK_TOKENS
from dse.scenarios.base import PublishedFigure, Tolerance
from dse.scenarios.kinds.serving import studies
from dse.scenarios.kinds.serving.inputs import ServingInputs, resolve

VLLM_TABLE_1 = (
    "Kwon et al., 'Efficient Memory Management for Large Language Model Serving with PagedAttention', SOSP'23"
)
#: vLLM profiles activation memory where the engine reserves a utilisation share: a few per cent apart.
KV_CAPACITY = Tolerance.within(0.1)


def kv_cache_tokens(catalog: Catalog, *, model: str, accelerator: str, tp: int) -> float:
    """Tokens the paged KV cache of one replica holds (vLLM's 'KV cache slots'), at utilisation 0.9."""
    r = resolve(
        ServingInputs(model=model, accelerator=accelerator, tensor_parallel=tp, gpu_memory_utilization=0.9), catalog
    )
    return float(studies.memory(r).kv_capacity_blocks * BLOCK_TOKENS)


PUBLISHED: tuple[PublishedFigure, ...] = (
    PublishedFigure(
        key="vllm-table1-opt13b-a100-kv-slots",
        quantity="KV-cache slots (tokens) of OPT-13B on one A100 40GB, fp16",
        published=15_700.0,
        unit="tokens",
        source=f"{VLLM_TABLE_1}, Table 1: 13B on an A100, memory for KV cache 12 GB, max. # KV cache slots 15.7K",
        tolerance=KV_CAPACITY,
        engine=partial(kv_cache_tokens, model="gpt3-13b", accelerator="a100-40gb", tp=1),
    ),
    PublishedFigure(
        key="vllm-table1-opt175b-8xa100-kv-slots",
        quantity="KV-cache slots (tokens) of OPT-175B on 8 A100 80GB (TP8), fp16",
        published=60_100.0,
        unit="tokens",
        source=f"{VLLM_TABLE_1}, Table 1: 175B on 8xA100-80GB, memory for KV cache 264 GB, max. # KV cache slots 60.1K",
        tolerance=KV_CAPACITY,
        engine=partial(kv_cache_tokens, model="gpt3-175b", accelerator="a100-80gb", tp=8),
    ),
)
