"""A signed-in worker's work: the job list, starting a job, the task page, and submitting, skipping or
releasing a task.

Every route acts only on the session's own worker: tasks are looked up by id *and* worker
(``TaskQueue.task_for``), and jobs only among the worker's teams' (``TaskQueue.job_for``), so another
worker's task or another team's job is refused as if it did not exist. Submitting stores the answer and
hands out the next task of the job in one round trip, with no S3 call.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.portal.answers import AnswerRejected, check_answer
from local_aws.portal.context import PortalContext
from local_aws.portal.forms import CSRF_FIELD, CSRF_HEADER, csrf_matches, form_fields
from local_aws.portal.pages import NOTICES, jobs_page, notice_text, problem_page, task_page
from local_aws.portal.responses import json_error, page, see_other
from local_aws.portal.sessions import Session
from local_aws.portal.sign_in_routes import FORBIDDEN, sign_in_url
from local_aws.workforce.task_queue import Task, TaskUnavailable

SUBMIT_BODY_LIMIT = 64 * 1024
SESSION_ENDED = "Your session ended. Sign in again to go on; your task is kept until its time runs out."
NOT_YOUR_JOB = "There is no open job of that name for your teams."


def jobs_url(notice: str, job: str) -> str:
    return "/?" + urlencode({"notice": notice, "job": job})


def task_url(task: Task) -> str:
    return f"/tasks/{task.id}"


class WorkRoutes:
    def __init__(self, context: PortalContext) -> None:
        self.context = context

    def jobs(self, request: Request, body: bytes) -> Response:
        session = self.context.session(request)
        if session is None:
            return see_other("/sign-in")
        offers = self.context.queue.jobs_for(session.worker_name, self.context.clock())
        params = request.query_params
        notice = notice_text(NOTICES, params.get("notice"), params.get("job"))
        return page(jobs_page(session.worker_name, offers, session.csrf_token, notice))

    def start(self, request: Request, body: bytes) -> Response:
        session, refusal = self._form_session(request, body)
        if session is None:
            return refusal
        job_name = request.path_params["job"]
        if self.context.queue.job_for(session.worker_name, job_name) is None:
            return page(problem_page("No such job", NOT_YOUR_JOB, session.csrf_token), status=404)
        task = self.context.queue.next_task(session.worker_name, job_name, self.context.clock())
        return see_other(jobs_url("empty", job_name) if task is None else task_url(task))

    def task(self, request: Request, body: bytes) -> Response:
        session = self.context.session(request)
        if session is None:
            return see_other(sign_in_url("session-ended"))
        worker = session.worker_name
        now = self.context.clock()
        try:
            task = self.context.queue.task_for(worker, request.path_params["task_id"], now)
        except TaskUnavailable as unavailable:
            return page(problem_page("Task not available", str(unavailable), session.csrf_token), status=404)
        job = self.context.queue.job_for(worker, task.job_name)
        if job is None:
            return page(problem_page("Task not available", NOT_YOUR_JOB, session.csrf_token), status=404)
        try:
            task_html = self.context.templates.render(
                job, task, lambda uri: self.context.images.url_for(uri, worker)
            )
        except LabelingJobFailed as failure:
            message = f"The job's task page cannot be shown. {failure}"
            return page(problem_page("Task page unavailable", message, session.csrf_token), status=502)
        return page(task_page(job, task, task_html, session.csrf_token, now))

    def submit(self, request: Request, body: bytes) -> Response:
        session = self.context.session(request)
        if session is None:
            return json_error(SESSION_ENDED, 401)
        if not csrf_matches(session.csrf_token, request.headers.get(CSRF_HEADER)):
            return json_error(FORBIDDEN, 403)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return json_error("The answer must be sent as application/json.", 415)
        try:
            answer = json.loads(body)
        except ValueError:
            return json_error("The answer is not valid JSON.", 400)
        worker = session.worker_name
        queue = self.context.queue
        try:
            task = queue.task_for(worker, request.path_params["task_id"], self.context.clock())
            job = queue.job_for(worker, task.job_name)
            if job is None:
                raise TaskUnavailable(NOT_YOUR_JOB)
            element_name = self.context.templates.element_name(job, task)
            if element_name is None:
                return json_error("The job's template has no <crowd-bounding-box> element to answer.", 400)
            check_answer(answer, element_name, job.labels, task.width, task.height)
            queue.submit(worker, task.id, answer, self.context.clock())
        except AnswerRejected as rejected:
            return json_error(str(rejected), 400)
        except TaskUnavailable as unavailable:
            return json_error(str(unavailable), 409)
        except LabelingJobFailed as failure:
            return json_error(f"The job's template cannot be read. {failure}", 502)
        following = queue.next_task(worker, task.job_name, self.context.clock())
        return JSONResponse(
            {"next": jobs_url("done", task.job_name) if following is None else task_url(following)}
        )

    def skip(self, request: Request, body: bytes) -> Response:
        return self._give_back(request, body, "skipped")

    def release(self, request: Request, body: bytes) -> Response:
        return self._give_back(request, body, "released")

    def _give_back(self, request: Request, body: bytes, how: str) -> Response:
        session, refusal = self._form_session(request, body)
        if session is None:
            return refusal
        worker = session.worker_name
        try:
            task = self.context.queue.give_back(
                worker, request.path_params["task_id"], how, self.context.clock()
            )
        except TaskUnavailable as unavailable:
            return page(problem_page("Task not available", str(unavailable), session.csrf_token), status=409)
        if how == "released":
            return see_other(jobs_url("released", task.job_name))
        following = self.context.queue.next_task(worker, task.job_name, self.context.clock())
        return see_other(jobs_url("empty", task.job_name) if following is None else task_url(following))

    def _form_session(self, request: Request, body: bytes) -> tuple[Session, None] | tuple[None, Response]:
        """The session of a form post whose CSRF token matches it, else the response that refuses it."""
        session = self.context.session(request)
        if session is None:
            return None, see_other(sign_in_url("session-ended"))
        given = form_fields(body).get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not csrf_matches(session.csrf_token, given):
            return None, page(problem_page("Request refused", FORBIDDEN, session.csrf_token), status=403)
        return session, None
