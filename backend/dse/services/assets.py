"""Files the service serves or embeds: plotly.js from the installed plotly package."""

from __future__ import annotations

from pathlib import Path

import plotly

#: The dashboard loads it from /vendor/plotly.min.js; the standalone report embeds it.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
