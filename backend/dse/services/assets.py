"""Files the service serves or embeds: plotly.js from the installed plotly package, the dashboard's
files, and the log-axis tick script the dashboard and the standalone report share."""

from __future__ import annotations

import os
from pathlib import Path

import plotly

#: The dashboard loads it from /vendor/plotly.min.js; the standalone report embeds it.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
#: The dashboard's page, scripts and styles (DSE_FRONTEND_DIR where they are installed elsewhere).
FRONTEND_DIR = Path(os.environ.get("DSE_FRONTEND_DIR", Path(__file__).resolve().parents[3] / "frontend"))
#: The ticks of a log axis: an ES module the dashboard imports, and the report embeds (without its exports).
LOG_TICKS_JS = FRONTEND_DIR / "static" / "js" / "logticks.js"
