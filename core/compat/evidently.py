"""The parts of Evidently's report rendering that refit reads, for Evidently 0.7.23.

`monitoring.drift.report_html` renders a snapshot's page itself, so that the data goes
into the page escaped for a script element. It needs what Evidently's own
`Snapshot.get_html_str` computes: the snapshot's widgets, the dashboard and its
additional graphs (as `evidently.core.metric_types.render_widgets` builds them), and
the page template with its data block left out. None of that is public API.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

import evidently
from evidently.legacy.model.dashboard import DashboardInfo
from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo
from evidently.legacy.renderers.html_widgets import group_widget
from evidently.legacy.utils import NumpyEncoder
from evidently.legacy.utils.dashboard import TemplateParams, file_html_template

WRITTEN_FOR: Final = "0.7.23"
if evidently.__version__ != WRITTEN_FOR:
    raise ImportError(
        f"refit's report rendering reads Evidently {WRITTEN_FOR}'s internals, but "
        f"Evidently {evidently.__version__} is installed; install evidently=={WRITTEN_FOR} "
        "(pyproject.toml pins it) or port core/compat/evidently.py"
    )

DATA_MARKER: Final = "<!-- no embedded data -->"


@dataclass(frozen=True)
class PageParts:
    dashboard_id: str
    dashboard: dict[str, Any]  # the dashboard as Evidently serialises it
    additional_graphs: dict[str, Any]
    page_without_data: str  # Evidently's page, DATA_MARKER where its data script went
    data_marker: str = DATA_MARKER
    encoder: type[json.JSONEncoder] = NumpyEncoder


def snapshot_page_parts(snapshot: Any) -> PageParts:
    """What `Snapshot.get_html_str(as_iframe=False)` renders, taken apart."""
    widgets: list[BaseWidgetInfo] = [
        group_widget(title="", widgets=snapshot._widgets),
        *snapshot._tests_widgets,
    ]
    graphs: dict[str, Any] = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = graph.params if isinstance(graph, AdditionalGraphInfo) else graph
            graphs[str(graph.id)] = info.dict() if isinstance(info, BaseWidgetInfo) else info
    dashboard_id = "metric_" + uuid.uuid4().hex
    info = DashboardInfo(name="Report", widgets=widgets)
    params = TemplateParams(
        dashboard_id=dashboard_id, dashboard_info=info, additional_graphs=graphs, embed_data=False
    )
    page = file_html_template(params)
    if page.count(DATA_MARKER) != 1:
        raise RuntimeError("Evidently's page template changed: no single data placeholder")
    dashboard = info.dict()
    for widget_dict in dashboard["widgets"]:
        widget_dict.pop("additionalGraphs", None)  # they travel in additional_graphs
    return PageParts(dashboard_id, dashboard, graphs, page)
