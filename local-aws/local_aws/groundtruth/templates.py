"""The worker UI template, rendered for each task with Liquid as Ground Truth renders it.

The task's variables are ``task.input.taskObject`` (the object's ``source-ref``) and ``task.input.labels``
(the label category names). Autoescaping is on, as on AWS, and the crowd filters are registered next to
Liquid's own (``escape``, ``escape_once``): ``grant_read_access`` turns an S3 URI into a presigned HTTPS
GET URL, ``to_json`` encodes a value as JSON and ``skip_autoescape`` marks a value as safe HTML. Filters
are strict: a template naming an unknown filter does not render.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html.parser import HTMLParser

from liquid import Environment, Markup
from liquid.exceptions import LiquidError

from local_aws.groundtruth.errors import LabelingJobFailed

BOUNDING_BOX_TAG = "crowd-bounding-box"


class TaskRenderer:
    """One job's template, parsed once and rendered per task; errors fail the job with Liquid's message."""

    def __init__(self, source: str, template_uri: str, presign: Callable[[str], str]) -> None:
        self.template_uri = template_uri
        environment = Environment(autoescape=True, strict_filters=True)
        environment.filters["grant_read_access"] = lambda value: _grant_read_access(value, presign)
        environment.filters["to_json"] = _to_json
        environment.filters["skip_autoescape"] = _skip_autoescape
        try:
            self._template = environment.from_string(source)
        except LiquidError as err:
            raise LabelingJobFailed(self._failure("could not be parsed", err)) from None

    def render(self, task_object: str, labels: Sequence[str]) -> str:
        try:
            return self._template.render(task={"input": {"taskObject": task_object, "labels": list(labels)}})
        except LiquidError as err:
            raise LabelingJobFailed(self._failure("could not be rendered", err)) from None

    def _failure(self, what: str, err: LiquidError) -> str:
        where = ""
        context = err.context()
        if context is not None:
            where = f" at line {context[0]}, column {context[1] + 1}"
        return f"ClientError: The worker UI template {self.template_uri} {what}: {err.message}{where}"


def _grant_read_access(value: object, presign: Callable[[str], str]) -> str:
    text = "" if value is None else str(value)
    return presign(text) if text.startswith("s3://") else text


def _to_json(value: object) -> str:
    return json.dumps(value, default=str)


def _skip_autoescape(value: object) -> Markup:
    return Markup("" if value is None else str(value))


def bounding_box_element(html: str) -> dict[str, str] | None:
    """The attributes of the first ``<crowd-bounding-box>`` element of rendered HTML, None if it has none."""
    finder = _ElementFinder(BOUNDING_BOX_TAG)
    finder.feed(html)
    finder.close()
    return finder.attributes


class _ElementFinder(HTMLParser):
    def __init__(self, tag: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tag = tag
        self.attributes: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == self.tag and self.attributes is None:
            self.attributes = {name: value or "" for name, value in attrs}

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
