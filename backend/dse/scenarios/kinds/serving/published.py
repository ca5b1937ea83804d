"""Published figures of the serving kind.

None yet is reproduced as a validation record: the serving benchmarks found (vLLM, Kwon et al., SOSP'23,
Section 6 and Figure 12) publish normalized latency against request rate as curves, not as numbers that can
be quoted exactly. The internal consistency check (the simulation's saturated decode throughput equals the
fixed-batch inference model's at the same batch) lives in tests/engines/test_serving.py.
"""

from __future__ import annotations

from dse.scenarios.base import PublishedFigure

PUBLISHED: tuple[PublishedFigure, ...] = ()
