"""A real SMTP server (aiosmtpd) on 127.0.0.1 that requires a login and keeps what it receives."""

from __future__ import annotations

import email
import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.local_aws.ports import free_port

LOGIN = "alerts"
PASSWORD = "s3cret-smtp-pw"
FROM_EMAIL = "airflow@example.com"


@dataclass
class Received:
    """One mail as the server got it: envelope recipients, the login it was sent with, the parsed message."""

    recipients: list[str]
    login: str | None
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        """The body's text: the HTML part's ``<pre>`` block, unescaped."""
        [part] = [part for part in self.message.walk() if part.get_content_type() == "text/html"]
        body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        match = re.fullmatch(r"<pre>(.*)</pre>", body, flags=re.DOTALL)
        assert match, body
        return html.unescape(match.group(1))


@dataclass
class SmtpInbox:
    port: int
    received: list[Received] = field(default_factory=list)

    def connection_json(self, password: str = PASSWORD) -> str:
        """An Airflow SMTP connection to this server (plain SMTP: the test server has no TLS)."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "login": LOGIN,
                "password": password,
                "extra": {
                    "from_email": FROM_EMAIL,
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 5,
                    "retry_limit": 0,
                },
            }
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.login.decode() if session.auth_data else None
        message = email.message_from_bytes(envelope.original_content)
        self.received.append(Received(list(envelope.rcpt_tos), login, message))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    accepted = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        LOGIN.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=accepted, handled=False, auth_data=auth_data if accepted else None)


@contextmanager
def smtp_inbox() -> Iterator[SmtpInbox]:
    """Runs the server for the duration of the block; mail is refused unless the client logged in."""
    inbox = SmtpInbox(port=free_port())
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=inbox.port,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
