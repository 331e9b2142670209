"""One self-contained HTML page of a run's analysis: figures as base64 PNG data URIs, metrics as tables.

The page is rendered by Jinja2 with autoescaping, so every text that comes from the run (class names,
image names, error messages, metric keys) is escaped. Files too large to embed (the PDFs) are linked by
their relative name, which resolves next to ``report.html`` in S3 or in a downloaded copy of the folder.

A page is written in two parts: the analysis task writes the labeling's sections, and a task at the end of
the run adds the trained model and its predictions. ``ReportPage.to_json`` keeps a page between the two as
JSON whose figures are named by their PNG file, which ``ReportPage.from_json`` reads back next to it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    filename: str = ""  # the PNG's file name next to report.html; a page kept as JSON needs it

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


@dataclass(frozen=True)
class ReportPage:
    """The sections of a report page: ``sections`` in the order of the workflow, then ``appendix`` (the
    files and what could not be drawn), which stays last when later sections are added."""

    title: str
    subtitle: str
    sections: tuple[HtmlSection, ...]
    appendix: tuple[HtmlSection, ...] = ()

    def with_sections(
        self, sections: Sequence[HtmlSection], title: str = "", subtitle: str = ""
    ) -> ReportPage:
        """This page with ``sections`` added after its own, before the appendix; a new title if given."""
        return replace(
            self,
            title=title or self.title,
            subtitle=subtitle or self.subtitle,
            sections=(*self.sections, *sections),
        )

    def render(self) -> str:
        return render_report_html(self.title, self.subtitle, (*self.sections, *self.appendix))

    def to_json(self) -> bytes:
        """The page as JSON, each figure by its file name (which every figure must have)."""
        document = {
            "title": self.title,
            "subtitle": self.subtitle,
            "sections": [_section_document(section) for section in self.sections],
            "appendix": [_section_document(section) for section in self.appendix],
        }
        return (json.dumps(document, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, read_png: Callable[[str], bytes]) -> ReportPage:
        """The page ``to_json`` wrote, each figure's PNG read by ``read_png(file name)``."""
        document = json.loads(data)
        return cls(
            title=document["title"],
            subtitle=document["subtitle"],
            sections=tuple(_section_of(item, read_png) for item in document["sections"]),
            appendix=tuple(_section_of(item, read_png) for item in document["appendix"]),
        )


def _section_document(section: HtmlSection) -> dict[str, Any]:
    unnamed = [figure.caption for figure in section.figures if not figure.filename]
    if unnamed:
        raise ValueError(f"Section {section.title!r} has figures without a file name: {unnamed}")
    return {
        "title": section.title,
        "text": section.text,
        "tables": [
            {
                "title": table.title,
                "columns": list(table.columns),
                "rows": [[[c.text, c.is_number] for c in row] for row in table.rows],
            }
            for table in section.tables
        ],
        "figures": [{"caption": f.caption, "filename": f.filename} for f in section.figures],
        "links": [{"text": link.text, "filename": link.filename} for link in section.links],
    }


def _section_of(document: Mapping[str, Any], read_png: Callable[[str], bytes]) -> HtmlSection:
    return HtmlSection(
        title=document["title"],
        text=document["text"],
        tables=tuple(
            HtmlTable(
                table["title"],
                tuple(table["columns"]),
                tuple(tuple(HtmlCell(text, is_number) for text, is_number in row) for row in table["rows"]),
            )
            for table in document["tables"]
        ),
        figures=tuple(
            HtmlFigure(f["caption"], read_png(f["filename"]), f["filename"]) for f in document["figures"]
        ),
        links=tuple(HtmlLink(link["text"], link["filename"]) for link in document["links"]),
    )


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
