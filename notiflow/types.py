"""Small value types shared by the event contract, the settings and the HTTP API.

Cheap to import (pydantic and zoneinfo only): the event contract, which the workflow
sandbox imports, uses them.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, StringConstraints


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except Exception:  # ZoneInfoNotFoundError, ValueError for a malformed key, OSError for a folder
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Indian/Antananarivo") from None
    return value


#: An IANA time zone this machine knows, e.g. ``Indian/Antananarivo``.
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_time_zone)]
#: A local time of day, ``HH:MM`` on the 24-hour clock (quiet hours).
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
