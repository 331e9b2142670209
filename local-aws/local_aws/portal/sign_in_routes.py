"""Signing in and out: ``GET``/``POST /sign-in`` and ``POST /sign-out``.

The sign-in form has its own CSRF token (login CSRF: another site must not sign a browser in to an account
of its choosing), kept in the ``portal_csrf`` cookie and repeated in the form. Throttling is checked before
the password, and a refusal never says whether the name or the password was wrong.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from local_aws.portal.context import PortalContext
from local_aws.portal.forms import CSRF_FIELD, client_address, csrf_matches, form_fields, is_https
from local_aws.portal.pages import SIGN_IN_NOTICES, notice_text, problem_page, sign_in_page
from local_aws.portal.responses import page, see_other
from local_aws.portal.sessions import SESSION_COOKIE, SESSION_TTL_S, TOKEN_BYTES

LOGIN_CSRF_COOKIE = "portal_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
WRONG_NAME_OR_PASSWORD = "The name or password is not right."
FORBIDDEN = "This form has expired or did not come from the portal. Go back, reload the page and try again."


def sign_in_url(notice: str) -> str:
    return "/sign-in?" + urlencode({"notice": notice})


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


class SignInRoutes:
    def __init__(self, context: PortalContext) -> None:
        self.context = context

    def form(self, request: Request, body: bytes) -> Response:
        if self.context.session(request) is not None:
            return see_other("/")
        notice = notice_text(SIGN_IN_NOTICES, request.query_params.get("notice"))
        return self._form(request, notice=notice)

    def sign_in(self, request: Request, body: bytes) -> Response:
        fields = form_fields(body)
        if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), fields.get(CSRF_FIELD)):
            return page(problem_page("Sign-in refused", FORBIDDEN), status=403)
        name = fields.get("name", "")
        client = client_address(request)
        now = self.context.clock()
        wait = self.context.throttle.retry_after(name, client, now)
        if wait is not None:
            minutes = -(-wait // 60)
            error = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
            return self._form(request, name=name, error=error, status=429, headers={"Retry-After": str(wait)})
        account = self.context.accounts.verify(name, fields.get("password", ""))
        if account is None:
            self.context.throttle.record_failure(name, client, now)
            return self._form(request, name=name, error=WRONG_NAME_OR_PASSWORD, status=401)
        token, _ = self.context.sessions.start(account.name, now)
        response = see_other("/")
        set_cookie(response, request, SESSION_COOKIE, token, SESSION_TTL_S)
        return response

    def sign_out(self, request: Request, body: bytes) -> Response:
        session = self.context.session(request)
        if session is None:
            return see_other(sign_in_url("session-ended"))
        if not csrf_matches(session.csrf_token, form_fields(body).get(CSRF_FIELD)):
            return page(problem_page("Sign-out refused", FORBIDDEN, session.csrf_token), status=403)
        self.context.sessions.end(request.cookies[SESSION_COOKIE])
        response = see_other(sign_in_url("signed-out"))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _form(
        self,
        request: Request,
        *,
        name: str = "",
        notice: str = "",
        error: str = "",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The form, with the browser's login CSRF token (a new one if it has none)."""
        csrf_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not _TOKEN.fullmatch(csrf_token):
            csrf_token = secrets.token_urlsafe(TOKEN_BYTES)
        response = page(
            sign_in_page(csrf_token, name=name, notice=notice, error=error), status=status, headers=headers
        )
        set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf_token, SESSION_TTL_S)
        return response
