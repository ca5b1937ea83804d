"""One folder per scenario kind, every folder with the same file names.

    kinds/<kind>/
        __init__.py   KIND, the registered instance (and nothing else)
        inputs.py     the pydantic input models (with bounds and units), the resolved tree, `resolve`
        metrics.py    METRICS: every metric's declaration (label, unit, formula, boolean); `compute`
        studies.py    the analyses beyond the metrics (curves over a batch grid, comparisons, tables)
        charts.py     Plotly charts of this kind's numbers
        published.py  PUBLISHED: the published figures this kind is validated against, with sources
                      and tolerances (the tests and the Validation page both read these records)
        examples.py   EXAMPLES: realistic example documents; the first is the default
        kind.py       the ScenarioKind subclass that ties the files together (`evaluate`)

A new kind is one folder and one line in `dse.scenarios.registry`; a new metric is one
declaration in its `metrics.py`. Kinds never import each other: what two kinds share lives in
`dse.scenarios.shared` (an import-linter contract checks both rules).
"""
