"""Small factories shared by every dashboard: the datasource, queries, variables and panels.

Every panel and query points at the `${datasource}` variable, so the dashboards carry no
`__inputs` and work with whichever Prometheus the viewer picks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DASHBOARD_TAG = "circleci"
DATASOURCE = dashboard_models.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Dashboard uids are part of the public interface: links between dashboards and the home
# dashboard setting of the compose stack use them.
OVERVIEW_UID = "circleci-overview"
PROJECT_UID = "circleci-project"
INSIGHTS_UID = "circleci-insights"
EXPORTER_UID = "circleci-exporter"

RUNS_PER_HOUR = "suffix: runs/h"

PanelT = TypeVar(
    "PanelT",
    timeseries.Panel,
    stat.Panel,
    table.Panel,
    bargauge.Panel,
    heatmap.Panel,
    statetimeline.Panel,
)


@dataclass(frozen=True)
class StatusStyle:
    """How one CircleCI workflow status is drawn; `code` encodes it for the state timeline."""

    status: str
    code: int
    color: str


WORKFLOW_STATUSES: tuple[StatusStyle, ...] = (
    StatusStyle("success", 1, "green"),
    StatusStyle("running", 2, "blue"),
    StatusStyle("on_hold", 3, "purple"),
    StatusStyle("failing", 4, "orange"),
    StatusStyle("failed", 5, "red"),
    StatusStyle("error", 6, "dark-red"),
    StatusStyle("canceled", 7, "text"),
    StatusStyle("not_run", 8, "text"),
    StatusStyle("unauthorized", 9, "yellow"),
)


def status_text_mappings() -> list[dashboard_models.ValueMapping]:
    """Colour a cell holding a status string (tables built from a `status` label)."""
    options = {
        style.status: dashboard_models.ValueMappingResult(color=style.color, index=index)
        for index, style in enumerate(WORKFLOW_STATUSES)
    }
    return [dashboard_models.ValueMap(options=options)]


def status_code_mappings() -> list[dashboard_models.ValueMapping]:
    """Turn the numeric codes of `status_code_expr` back into coloured status names."""
    options = {
        str(style.code): dashboard_models.ValueMappingResult(
            text=style.status, color=style.color, index=index
        )
        for index, style in enumerate(WORKFLOW_STATUSES)
    }
    return [dashboard_models.ValueMap(options=options)]


def status_code_expr(metric: str, selector: str, by: str) -> str:
    """One numeric series per `by` group whose value encodes the status set to 1.

    A state set has one series per status; a state timeline needs one series per workflow, so
    each status becomes its code (`== 1` keeps only the active status) and `or` stacks them.
    """
    parts = [
        f'max by ({by}) ({metric}{{{selector}, status="{style.status}"}} == 1) * {style.code}'
        for style in WORKFLOW_STATUSES
    ]
    return "\n or ".join(f"({part})" for part in parts)


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (the base colour)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=value, color=color) for value, color in steps])
    )


def query(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    fmt: prometheus_models.PromQueryFormat = prometheus_models.PromQueryFormat.TIME_SERIES,
) -> prometheus.Dataquery:
    built = (
        prometheus.Dataquery().expr(expr).legend_format(legend).format(fmt).datasource(DATASOURCE)
    )
    return built.instant() if instant else built.range()


def table_query(expr: str) -> prometheus.Dataquery:
    """An instant query whose labels become table columns."""
    return query(expr, instant=True, fmt=prometheus_models.PromQueryFormat.TABLE)


def _base(
    panel: PanelT,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    span: int,
    height: int,
) -> PanelT:
    for index, target in enumerate(queries):
        target.ref_id(chr(ord("A") + index))
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(queries))
        .unit(unit)
        .span(span)
        .height(height)
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    span: int = 12,
    height: int = 8,
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .line_width(1)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if stacked:
        panel = panel.stacking(
            common_builders.StackingConfig().mode(common_models.StackingMode.NORMAL)
        )
    return _base(panel, title, description, unit, queries, span, height)


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    span: int = 4,
    height: int = 4,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
) -> stat.Panel:
    panel = (
        stat.Panel()
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(thresholds(*steps))
    )
    return _base(panel, title, description, unit, queries, span, height)


def bar_gauge_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    span: int = 12,
    height: int = 8,
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(thresholds(*steps))
    )
    return _base(panel, title, description, unit, queries, span, height)


def heatmap_panel(
    title: str,
    description: str,
    bucket_expr: str,
    *,
    span: int = 12,
    height: int = 8,
) -> heatmap.Panel:
    """Heatmap of a Prometheus histogram; the buckets come precomputed, so Grafana must not."""
    panel = (
        heatmap.Panel()
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .steps(64)
        )
    )
    target = query(bucket_expr, "{{le}}", fmt=prometheus_models.PromQueryFormat.HEATMAP)
    return _base(panel, title, description, "short", [target], span, height)


def state_timeline_panel(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    span: int = 24,
    height: int = 8,
) -> statetimeline.Panel:
    panel = (
        statetimeline.Panel()
        .show_value(common_models.VisibilityMode.NEVER)
        .merge_values(True)
        .mappings(status_code_mappings())
    )
    return _base(panel, title, description, "none", queries, span, height)


def hidden(field: str) -> tuple[str, list[dashboard_models.DynamicConfigValue]]:
    """Hide a table column but keep the field, so data links can still read it."""
    return field, [dashboard_models.DynamicConfigValue(id_val="custom.hidden", value=True)]


def labels_table_panel(
    title: str,
    description: str,
    expr: str,
    *,
    drop: Sequence[str] = (),
    span: int = 24,
    height: int = 8,
) -> table.Panel:
    """One row per series of an instant query, its labels as columns (the value dropped)."""
    excluded = {name: True for name in ("Time", "__name__", "Value", *drop)}
    panel = table.Panel().with_transformation(
        dashboard_models.DataTransformerConfig(
            id_val="organize", options={"excludeByName": excluded}
        )
    )
    return _base(panel, title, description, "none", [table_query(expr)], span, height)


@dataclass(frozen=True)
class Column:
    """One numeric column of a merged table: its header, the instant query and the unit."""

    name: str
    expr: str
    unit: str


def merged_table_panel(
    title: str,
    description: str,
    columns: Sequence[Column],
    *,
    span: int = 24,
    height: int = 8,
    sort_by: str | None = None,
) -> table.Panel:
    """Several instant queries joined on their labels into one table, one column per query."""
    renames = {
        f"Value #{chr(ord('A') + index)}": column.name for index, column in enumerate(columns)
    }
    panel = (
        table.Panel()
        .with_transformation(dashboard_models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dashboard_models.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": renames},
            )
        )
    )
    for column in columns:
        panel = panel.override_by_name(
            column.name, [dashboard_models.DynamicConfigValue(id_val="unit", value=column.unit)]
        )
    if sort_by is not None:
        panel = panel.sort_by(
            [common_builders.TableSortByFieldState().display_name(sort_by).desc(True)]
        )
    queries = [table_query(column.expr) for column in columns]
    return _base(panel, title, description, "none", queries, span, height)


def link(title: str, url: str) -> dashboard_builders.DashboardLink:
    """A data link; `url` may use `${__data.fields.<name>}` or `${__field.labels.<name>}`."""
    return dashboard_builders.DashboardLink(title).url(url).target_blank(url.startswith("${"))


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    return (
        dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )


def label_variable(
    name: str, label: str, selector: str, *, multi: bool
) -> dashboard_builders.QueryVariable:
    """A variable listing the values of label `name` on the series `selector` matches.

    Multi-value variables expand to a regex, so queries must match them with `=~`; `.*` as the
    All value keeps the query short however many values there are.
    """
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({selector}, {name})")
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


class _AlertsAnnotationQuery(dashboard_models.AnnotationQuery):
    """The SDK's annotation model lacks the Prometheus-specific fields; add them on output."""

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            {
                "step": "60s",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{severity}}: {{project}} {{branch}} {{workflow}}",
                "tagKeys": "severity,project",
                "useValueForTime": False,
            }
        )
        return payload


class AlertsAnnotation(cogbuilder.Builder[dashboard_models.AnnotationQuery]):
    """Marks the time ranges during which a Prometheus alert fired."""

    def build(self) -> dashboard_models.AnnotationQuery:
        return _AlertsAnnotationQuery(
            name="Firing alerts",
            datasource=DATASOURCE,
            enable=True,
            icon_color="red",
            expr='ALERTS{alertstate="firing"}',
        )


def base_dashboard(uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    """The settings every Ocean CI dashboard shares: tags, time, links, datasource, alerts."""
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([DASHBOARD_TAG])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard_builders.DashboardLink("CircleCI dashboards")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags([DASHBOARD_TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
        .annotation(AlertsAnnotation())
    )


def row(title: str) -> dashboard_builders.Row:
    return dashboard_builders.Row(title)
