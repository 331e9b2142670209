"""One self-contained HTML page of a run's analysis: figures as base64 PNG data URIs, metrics as tables.

The page is rendered by Jinja2 with autoescaping, so every text that comes from the run (class names,
image names, error messages, metric keys) is escaped. Files too large to embed (the PDFs) are linked by
their relative name, which resolves next to ``report.html`` in S3 or in a downloaded copy of the folder.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd

from ground_truth_pipeline.experiment import slugify
from ground_truth_pipeline.reports.metrics_json import to_json_value

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("ground_truth_pipeline.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class HtmlCell:
    text: str
    is_number: bool = False


@dataclass(frozen=True)
class HtmlTable:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[HtmlCell, ...], ...]


@dataclass(frozen=True)
class HtmlFigure:
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class HtmlLink:
    text: str
    filename: str

    @property
    def href(self) -> str:
        return quote(self.filename)


@dataclass(frozen=True)
class HtmlSection:
    title: str
    text: str = ""
    tables: Sequence[HtmlTable] = field(default_factory=tuple)
    figures: Sequence[HtmlFigure] = field(default_factory=tuple)
    links: Sequence[HtmlLink] = field(default_factory=tuple)

    @property
    def anchor(self) -> str:
        return slugify(self.title) or "section"


def render_report_html(title: str, subtitle: str, sections: Sequence[HtmlSection]) -> str:
    return _TEMPLATES.get_template("report.html.j2").render(title=title, subtitle=subtitle, sections=sections)


def cell(value: Any) -> HtmlCell:
    """A table cell for a JSON value: numbers right-aligned with at most four decimals, null as n/a."""
    if value is None:
        return HtmlCell("n/a")
    if isinstance(value, bool):
        return HtmlCell("yes" if value else "no")
    if isinstance(value, int):
        return HtmlCell(f"{value:,}", is_number=True)
    if isinstance(value, float):
        return HtmlCell(f"{value:,.4f}".rstrip("0").rstrip("."), is_number=True)
    if isinstance(value, str):
        return HtmlCell(value)
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return HtmlCell(", ".join(cell(item).text for item in value))
    return HtmlCell(json.dumps(value, sort_keys=True))


def metrics_tables(metrics: Mapping[str, Any]) -> list[HtmlTable]:
    """The metrics summary as tables: its top-level values in one, then one per nested mapping or list.

    A mapping of mappings (e.g. ``{"human": {...}, "auto": {...}}``) becomes a matrix with one row per
    outer key; other mappings are flattened to dotted keys; a list of mappings gets one row per item.
    """
    plain = to_json_value(metrics)
    tables = []
    top_level = [(key, value) for key, value in sorted(plain.items()) if not _is_nested(value)]
    if top_level:
        tables.append(_key_value_table("Summary", top_level))
    for key, value in sorted(plain.items()):
        if isinstance(value, dict):
            tables.append(_mapping_table(key, value))
        elif _is_nested(value):
            tables.append(_records_table(key, value))
    return tables


def frame_table(title: str, frame: pd.DataFrame) -> HtmlTable:
    records = to_json_value(frame.to_dict(orient="records"), path=title)
    return _records_table(title, records)


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(i, dict) for i in value))


def _key_value_table(title: str, items: Iterable[tuple[str, Any]]) -> HtmlTable:
    return HtmlTable(title, ("Metric", "Value"), tuple((HtmlCell(key), cell(value)) for key, value in items))


def _mapping_table(title: str, mapping: dict[str, Any]) -> HtmlTable:
    rows = list(mapping.values())
    if rows and all(isinstance(row, dict) and not any(_is_nested(v) for v in row.values()) for row in rows):
        columns = list(dict.fromkeys(column for row in rows for column in row))
        body = tuple(
            (HtmlCell(key), *(cell(row.get(column)) for column in columns)) for key, row in mapping.items()
        )
        return HtmlTable(title, ("", *columns), body)
    return _key_value_table(title, _flatten(mapping))


def _records_table(title: str, records: list[Any]) -> HtmlTable:
    rows = [record if isinstance(record, dict) else {"value": record} for record in records]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    return HtmlTable(title, tuple(columns), tuple(tuple(cell(row.get(c)) for c in columns) for row in rows))


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items
