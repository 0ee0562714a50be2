"""What a consumer does when handling a record fails: a typed policy, not a try/except per app.

Each failure is classified by exception class into one :class:`Action`: retry (with a bound
and a backoff), dead-letter (the record goes to the dead-letter topic with its original
bytes, and consumption continues), or raise (the consumer stops without committing the
record, so it is redelivered after a fix). The default sends every :class:`BusError` — bad
input, bad signature, bad schema — to the dead-letter topic, retries transient delivery
failures, and raises on anything else: a bug must crash loudly, not be swallowed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from ._errors import BusError, DeliveryError, DuplicateEventError, HandlerError, RecordTooLargeError

__all__ = ["Action", "ErrorPolicy"]


class Action(enum.Enum):
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"
    RAISE = "raise"
    SKIP = "skip"  # only for duplicates: already processed, nothing to keep


@dataclasses.dataclass(frozen=True)
class ErrorPolicy:
    """Maps exception classes to actions; the most specific class in the MRO wins."""

    rules: Mapping[type[BaseException], Action] = dataclasses.field(default_factory=lambda: {
        DuplicateEventError: Action.DEAD_LETTER,
        RecordTooLargeError: Action.DEAD_LETTER,
        DeliveryError: Action.RETRY,
        HandlerError: Action.DEAD_LETTER,
        BusError: Action.DEAD_LETTER,
        Exception: Action.RAISE,
    })
    max_retries: int = 3
    backoff_ms: int = 200

    def action_for(self, error: BaseException) -> Action:
        for klass in type(error).__mro__:
            if klass in self.rules:
                return self.rules[klass]
        return Action.RAISE

    def with_rule(self, klass: type[BaseException], action: Action) -> ErrorPolicy:
        return dataclasses.replace(self, rules={**self.rules, klass: action})
