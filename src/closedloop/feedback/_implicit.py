"""Implicit feedback: what users do with an answer says how good it was.

Heavy editing and asking the same question again are signals users give without being
asked; both are recorded as ``kind="implicit"`` feedback on the call they judge
(Contract 2 names ``edit_ratio`` and ``retry``).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from closedloop._extras import extra_needed
from closedloop._validation import (
    require_callable,
    require_non_empty_str,
    require_positive_int,
    require_positive_number,
    require_type,
)
from closedloop.feedback._recorder import Recorded, record
from closedloop.feedback._targets import FeedbackTarget, Target, resolve

RETRY_SOURCE = "retry_detector"


def edit_ratio(original: str, edited: str) -> float:
    """Share of the output the user rewrote: 0.0 untouched, 1.0 completely rewritten.

    Levenshtein distance over the longer text's length reads as "fraction of characters
    changed": deleting 80 % of an answer gives 0.8 (Indel, which counts a substitution
    as two edits over both lengths, would give 0.67). Two empty texts are untouched.
    """
    _require_text("original", original)
    _require_text("edited", edited)
    with extra_needed("implicit", "edit_ratio()"):
        from rapidfuzz.distance import Levenshtein
    return Levenshtein.normalized_distance(original, edited)


def record_edit(
    target: FeedbackTarget,
    original: str,
    edited: str,
    *,
    label: str | None = None,
    comment: str | None = None,
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """Record how much of ``target``'s output the user rewrote before using it
    (``edit_ratio``, always ``kind="implicit"``)."""
    return record(
        target, "edit_ratio", edit_ratio(original, edited), label=label, comment=comment,
        kind="implicit", source=source, timestamp=timestamp,
    )  # fmt: skip


def _require_text(field: str, value: str) -> None:
    require_type(field, value, str, "pass the text itself.")


def _normalize(text: str) -> str:
    """Compatibility-fold, casefold, turn punctuation into spaces and collapse whitespace,
    so "WHERE is my order?!" and "where is my order" compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    return " ".join(spaced.split())


@dataclass
class _Asked:
    """One earlier question; ``retried`` keeps a call from being blamed twice."""

    text: str
    target: Target
    at: float
    retried: bool = False


class RetryDetector:
    """Flags a call as unsatisfying when the same user asks (nearly) the same again.

    Questions are compared with rapidfuzz ``token_sort_ratio``: restatements often
    reorder words ("my password, how do I reset it?" scores 95 against "how do I reset
    my password", where plain ``ratio`` gives 55), while ``token_set_ratio`` would call
    any question that contains another a repeat. Only ids are kept per question, users
    are keyed by a keyed hash, and memory is bounded: the least recently active users
    are forgotten beyond ``max_users``, older questions beyond ``max_questions_per_user``.
    ``observe`` never waits on I/O (recording only creates a span), so it is safe to call
    from threads and from asyncio code.
    """

    def __init__(
        self,
        *,
        window_s: float = 300.0,
        threshold: float = 90.0,
        max_users: int = 10_000,
        max_questions_per_user: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_positive_number("window_s", window_s, "pass a number of seconds, e.g. 300.")
        require_type("threshold", threshold, (int, float), "pass a number from 0 to 100.")
        if not 0 < threshold <= 100:
            raise ValueError(f"threshold must be above 0 and at most 100, got {threshold!r}.")
        require_positive_int("max_users", max_users, "pass a whole number, e.g. 10000.")
        require_positive_int(
            "max_questions_per_user", max_questions_per_user, "pass a whole number, e.g. 20."
        )
        require_callable("clock", clock, "pass a function returning seconds, e.g. time.monotonic.")
        with extra_needed("implicit", "RetryDetector"):
            from rapidfuzz.fuzz import token_sort_ratio
        self._token_sort_ratio = token_sort_ratio
        self._window_s = float(window_s)
        self._threshold = float(threshold)
        self._max_users = max_users
        self._max_questions = max_questions_per_user
        self._clock = clock
        self._salt = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._users: OrderedDict[bytes, deque[_Asked]] = OrderedDict()

    def observe(self, user_id: str, question: str, target: FeedbackTarget) -> Recorded | None:
        """Remember ``question`` (answered by the call ``target``); when it repeats one of
        this user's recent questions, record ``retry`` on that earlier call and return it."""
        require_non_empty_str("user_id", user_id, "pass the app's user id as text.")
        _require_text("question", question)
        resolved = resolve(target)
        text = _normalize(question)
        if not text:
            return None
        with self._lock:
            earlier = self._remember(self._user_key(user_id), _Asked(text, resolved, self._clock()))
        if earlier is None:
            return None
        return record(earlier.target, "retry", 1, kind="implicit", source=RETRY_SOURCE)

    def _user_key(self, user_id: str) -> bytes:
        return hashlib.blake2b(user_id.encode(), key=self._salt, digest_size=16).digest()

    def _remember(self, key: bytes, asked: _Asked) -> _Asked | None:
        """Store ``asked`` and claim the latest unclaimed earlier question it repeats."""
        history = self._history(key)
        while history and asked.at - history[0].at > self._window_s:
            history.popleft()
        repeated = next((old for old in reversed(history) if self._repeats(old, asked)), None)
        if repeated is not None:
            repeated.retried = True
        history.append(asked)
        return repeated

    def _history(self, key: bytes) -> deque[_Asked]:
        history = self._users.get(key)
        if history is None:
            history = self._users[key] = deque(maxlen=self._max_questions)
            if len(self._users) > self._max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(key)
        return history

    def _repeats(self, old: _Asked, new: _Asked) -> bool:
        if old.retried:
            return False
        score = self._token_sort_ratio(old.text, new.text, score_cutoff=self._threshold)
        return score >= self._threshold
