"""Jobs' worker UI templates, read from S3 once per job and template URI, rendered for each task page.

The answer's key (the ``<crowd-bounding-box>`` element's name) is remembered with the template, so that
checking a submitted answer costs no S3 call. AWS's ``crowd-html-elements.js`` script tag is taken out of
the rendered page: the portal serves its own elements, and nothing is loaded from elsewhere.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from local_aws.groundtruth.inputs import read_template
from local_aws.groundtruth.templates import TaskRenderer, bounding_box_element
from local_aws.workforce.task_queue import PrivateJob, Task

AWS_CROWD_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*(["']?)https://assets\.crowd\.aws/crowd-html-elements\.js\1[^>]*>\s*</script\s*>""",
    re.IGNORECASE,
)
_CACHED_TEMPLATES = 128


class TaskTemplates:
    """The template source and answer key of each (job, template URI), in a small LRU cache."""

    def __init__(self, s3: Callable[[], Any]) -> None:
        self._s3 = s3
        self._lock = threading.Lock()
        self._sources: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._element_names: dict[tuple[str, str], str | None] = {}

    def render(self, job: PrivateJob, task: Task, presign: Callable[[str], str]) -> str:
        """The task's worker UI; LabelingJobFailed when the template cannot be read or rendered."""
        renderer = TaskRenderer(self._source(job), job.template_uri, presign)
        html = renderer.render(task.source_ref, job.labels)
        self._remember_element(job, html)
        return AWS_CROWD_SCRIPT.sub("", html)

    def element_name(self, job: PrivateJob, task: Task) -> str | None:
        """The name of the template's bounding-box element, the answer's one key; None if it has none."""
        key = (job.job_key, job.template_uri)
        with self._lock:
            if key in self._element_names:
                return self._element_names[key]
        # Only after a restart: the task page was rendered by another process, or before it.
        return self._remember_element(
            job, TaskRenderer(self._source(job), job.template_uri, str).render(task.source_ref, job.labels)
        )

    def _remember_element(self, job: PrivateJob, html: str) -> str | None:
        element = bounding_box_element(html)
        name = None if element is None else element.get("name") or None
        with self._lock:
            self._element_names[(job.job_key, job.template_uri)] = name
        return name

    def _source(self, job: PrivateJob) -> str:
        key = (job.job_key, job.template_uri)
        with self._lock:
            if key in self._sources:
                self._sources.move_to_end(key)
                return self._sources[key]
        source = read_template(self._s3(), job.template_uri)
        with self._lock:
            self._sources[key] = source
            while len(self._sources) > _CACHED_TEMPLATES:
                evicted, _ = self._sources.popitem(last=False)
                self._element_names.pop(evicted, None)
        return source
