"""The portal's HTML pages, as Liquid templates with autoescaping: every value a page shows is escaped.

Only two things go in unescaped, both marked as Markup on purpose: a page's own rendered body inside the
layout, and the job's worker UI (rendered, with autoescaping, by ``TaskTemplates``). Messages carried in
URLs are keys of ``NOTICES`` and ``SIGN_IN_NOTICES``, never text, so no link can make the portal say
something it did not write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from liquid import DictLoader, Environment, Markup, StrictUndefined

from local_aws.workforce.task_queue import JobOffer, PrivateJob, Task

# SageMaker's name pattern: only such a name is shown in a notice.
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
NOTICES = {
    "empty": "No tasks are waiting in {job}.",
    "done": "You have done every task waiting for you in {job}. Thank you!",
    "released": "Your task of {job} went back to the queue.",
}
SIGN_IN_NOTICES = {
    "signed-out": "You signed out.",
    "session-ended": "Your session ended. Sign in again to go on.",
}

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{%- for meta in metas %}
<meta name="{{ meta[0] }}" content="{{ meta[1] }}">
{%- endfor %}
<title>{{ title }} · Worker portal</title>
<link rel="stylesheet" href="/static/portal.css">
</head>
<body class="{{ body_class }}">
{{ content }}
</body>
</html>
"""

_SIGN_OUT = """<form method="post" action="/sign-out" class="inline">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <button type="submit" class="quiet">Sign out</button>
</form>"""

_SIGN_IN = """<main class="narrow">
  <h1>Worker portal</h1>
  <p class="lead">Sign in to label the tasks of your workteams.</p>
  {%- if notice != "" %}
  <p class="notice" role="status">{{ notice }}</p>
  {%- endif %}
  {%- if error != "" %}
  <p class="error" role="alert">{{ error }}</p>
  {%- endif %}
  <form method="post" action="/sign-in" class="card stack">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    <label for="name">Name</label>
    <input id="name" name="name" autocomplete="username" required autofocus value="{{ name }}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit" class="primary">Sign in</button>
  </form>
</main>"""

_JOBS = """<header class="bar">
  <span class="brand">Worker portal</span>
  <span class="who">Signed in as <strong>{{ worker }}</strong></span>
  {% include 'sign_out' %}
</header>
<main>
  <h1>Your jobs</h1>
  {%- if notice != "" %}
  <p class="notice" role="status">{{ notice }}</p>
  {%- endif %}
  {%- if offers.size == 0 %}
  <p class="empty">No labeling jobs are open for your teams right now. Come back later.</p>
  {%- endif %}
  <ul class="jobs">
  {%- for offer in offers %}
    <li class="card">
      <h2 id="job-{{ forloop.index }}">{{ offer.title }}</h2>
      <p>{{ offer.description }}</p>
      <p class="meta">{{ offer.waiting }} {% if offer.waiting == 1 %}task{% else %}tasks{% endif %} waiting
        · job {{ offer.job_name }}</p>
      {%- if offer.active_task_id %}
      <a class="button primary" href="/tasks/{{ offer.active_task_id }}"
         aria-describedby="job-{{ forloop.index }}">Continue</a>
      {%- else %}
      <form method="post" action="/jobs/{{ offer.job_name | url_encode }}/start">
        <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
        <button type="submit" class="primary" aria-describedby="job-{{ forloop.index }}"
          {%- if offer.waiting == 0 %} disabled{% endif %}>Start working</button>
      </form>
      {%- endif %}
    </li>
  {%- endfor %}
  </ul>
</main>"""

_TASK = """<header class="bar task-bar">
  <div class="task-title"><strong>{{ title }}</strong> <span class="meta">Task {{ task_id }}</span></div>
  <div class="time-left">Time left: <span id="time-left" role="timer" data-deadline="{{ deadline_ms }}">
    {{- time_left }}</span></div>
  <div class="actions">
    <form method="post" action="/tasks/{{ task_id }}/skip" class="inline">
      <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
      <button type="submit" id="skip-button" aria-keyshortcuts="Alt+S"
        title="Skip this image and take the next one (Alt+S)">Skip</button>
    </form>
    <form method="post" action="/tasks/{{ task_id }}/release" class="inline">
      <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
      <button type="submit" title="Give this task back and return to your jobs">Release</button>
    </form>
    {% include 'sign_out' %}
  </div>
</header>
<main class="task">
{{ task_html }}
</main>
<script src="/static/crowd-html-elements.js"></script>
<script src="/static/portal.js"></script>"""

_PROBLEM = """<header class="bar">
  <span class="brand">Worker portal</span>
  {%- if csrf_token != "" %}
  {% include 'sign_out' %}
  {%- endif %}
</header>
<main class="narrow">
  <h1>{{ heading }}</h1>
  <p class="error" role="alert">{{ message }}</p>
  <p><a href="/">Back to your jobs</a></p>
</main>"""

_ENVIRONMENT = Environment(
    loader=DictLoader(
        {
            "layout": _LAYOUT,
            "sign_out": _SIGN_OUT,
            "sign_in": _SIGN_IN,
            "jobs": _JOBS,
            "task": _TASK,
            "problem": _PROBLEM,
        }
    ),
    autoescape=True,
    undefined=StrictUndefined,
)


def notice_text(notices: Mapping[str, str], key: str | None, job: str | None = None) -> str:
    """The fixed text of a notice key, with a job name only where it is one; empty for anything else."""
    text = notices.get(key or "")
    if text is None:
        return ""
    if "{job}" in text:
        if job is None or not JOB_NAME.fullmatch(job):
            return ""
        return text.format(job=job)
    return text


def _page(title: str, name: str, values: dict[str, Any], *, metas: Sequence[tuple[str, str]] = ()) -> str:
    content = _ENVIRONMENT.get_template(name).render(**values)
    return _ENVIRONMENT.get_template("layout").render(
        title=title, body_class=name, metas=[list(meta) for meta in metas], content=Markup(content)
    )


def sign_in_page(csrf_token: str, *, name: str = "", notice: str = "", error: str = "") -> str:
    return _page(
        "Sign in", "sign_in", {"csrf_token": csrf_token, "name": name, "notice": notice, "error": error}
    )


def jobs_page(worker: str, offers: Sequence[JobOffer], csrf_token: str, notice: str = "") -> str:
    listed = [
        {
            "job_name": offer.job_name,
            "title": offer.title,
            "description": offer.description,
            "waiting": offer.waiting,
            "active_task_id": offer.active_task_id,
        }
        for offer in offers
    ]
    values = {"worker": worker, "offers": listed, "csrf_token": csrf_token, "notice": notice}
    return _page("Your jobs", "jobs", values)


def format_time_left(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), as the countdown of portal.js writes it."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def task_page(job: PrivateJob, task: Task, task_html: str, csrf_token: str, now: float) -> str:
    values = {
        "title": job.title,
        "task_id": task.id,
        "deadline_ms": int(task.deadline * 1000),
        "time_left": format_time_left(task.deadline - now),
        "csrf_token": csrf_token,
        "task_html": Markup(task_html),  # the job's template, rendered with autoescaping
    }
    metas = [("csrf-token", csrf_token), ("crowd-submit-url", f"/tasks/{task.id}/submit")]
    return _page(f"{job.title}, task {task.id}", "task", values, metas=metas)


def problem_page(heading: str, message: str, csrf_token: str = "") -> str:
    values = {"heading": heading, "message": message, "csrf_token": csrf_token}
    return _page(heading, "problem", values)
