"""What every route of the portal shares: the stores in the state file, the clock, S3, the signed session.

The clock is injectable (``create_app(clock=...)``) so that tests can move past sign-in throttling, session
lifetimes, task deadlines and image URL expiry without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from local_aws.config import LocalAwsConfig
from local_aws.portal.image_urls import ImageUrlSigner, load_secret
from local_aws.portal.serial_queue import SerialQueue
from local_aws.portal.sessions import SESSION_COOKIE, Session, Sessions
from local_aws.portal.sign_in_throttle import SignInThrottle
from local_aws.portal.task_templates import TaskTemplates
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from local_aws.workforce.task_queue import TaskQueue


class PortalContext:
    """The portal's state, made once per app."""

    def __init__(self, config: LocalAwsConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.db = StateDb(config.state_db)
        self.accounts = WorkerAccounts(self.db, config.region)
        self.queue = SerialQueue(TaskQueue(self.db), threading.Lock())
        self.sessions = Sessions(self.db)
        self.throttle = SignInThrottle(self.db)
        self.images = ImageUrlSigner(load_secret(config.data_dir / "portal" / "secret"), clock)
        self.templates = TaskTemplates(self.s3)
        self._s3: Any = None
        self._s3_lock = threading.Lock()

    def s3(self) -> Any:
        """One boto3 S3 client, made on first use (clients are thread-safe; making one is not cheap)."""
        with self._s3_lock:
            if self._s3 is None:
                self._s3 = self.config.boto3_client("s3")
            return self._s3

    def session(self, request: Request) -> Session | None:
        """The signed-in worker's session, None when the request carries no live one."""
        return self.sessions.find(request.cookies.get(SESSION_COOKIE), self.clock())
