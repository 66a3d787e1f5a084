"""What makes a waiver a real approval, for both kinds of waiver (policy findings of ``socle check``
and conformance failures of ``socle conform``): a justification a reader can act on, a named
approver, and an expiry within :data:`MAX_WAIVER_DAYS`, so no exception is granted for ever.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ght_socle.trust.grammar import check_text

MAX_WAIVER_DAYS = 548  # eighteen months: one yearly review plus the time to carry it out
MIN_JUSTIFICATION = 20
PLACEHOLDER_RE = re.compile(r"^\s*(todo|tbd|n/?a|none|null|xxx+|test|wip|-+|\.+|\?+)\s*$", re.IGNORECASE)


def check_justification(value: Any) -> str:
    text = check_text(value)
    if PLACEHOLDER_RE.match(text) or len(text.strip()) < MIN_JUSTIFICATION:
        raise ValueError(f"a justification says why the risk is accepted and what compensates it "
                         f"(at least {MIN_JUSTIFICATION} characters)")
    return text


def check_approver(value: Any) -> str:
    text = check_text(value, max_length=200)
    if len(text.strip()) < 3 or PLACEHOLDER_RE.match(text):
        raise ValueError("name who accepted the risk (the RSSI or their delegate)")
    return text


def check_expiry_bound(expires: dt.date, today: dt.date) -> dt.date:
    """An expiry at most :data:`MAX_WAIVER_DAYS` ahead (whether it has passed is each caller's rule)."""
    if expires > today + dt.timedelta(days=MAX_WAIVER_DAYS):
        raise ValueError(f"expires on {expires.isoformat()}, more than {MAX_WAIVER_DAYS} days ahead: "
                         "approve it for a bounded time and renew it")
    return expires
