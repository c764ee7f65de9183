"""uvicorn's access log without credentials.

The log line holds the whole request target, so ``?access_token=<JWT>`` (the
SSE route, for EventSource) and the signed token of an unsubscribe link would
land in log files readable by people who must not act as those users.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "[redacted]"
_ACCESS_TOKEN = re.compile(r"(?i)(access_token=)[^&\s]*")
#: A JWT anywhere in the target: three base64url parts, the first a JSON header ({"… → eyJ).
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")


def redact(target: str) -> str:
    return _JWT.sub(REDACTED, _ACCESS_TOKEN.sub(rf"\g<1>{REDACTED}", target))


class RedactTokens(logging.Filter):
    """Rewrites the arguments of uvicorn.access records: (client, method, target, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with the redacting filter on the access handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config
