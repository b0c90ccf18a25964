"""pydantic's validation errors in words: one part per invalid field, named by its dotted path,
with the value given, and none of pydantic's own apparatus (its "For further information visit
https://errors.pydantic.dev/..." links, ``[type=..., input_value=...]`` tails, or the names of
the classes that validated).

Every place that turns a ``pydantic.ValidationError`` into a message for a person goes through
:func:`in_words` (the CLI's run settings and its error line, the models' hyperparameters).
"""

from __future__ import annotations

import re
from typing import Any

_LINK = re.compile(r"\s*For further information visit \S+")
_TAIL = re.compile(r"\s*\[type=[^\]]*\]")
_HEADER = re.compile(r"^\s*\d+ validation errors? for \S+\s*$")
# the kinds of error whose message already says what was given, or where no value was given
_NO_VALUE = {"missing", "extra_forbidden", "value_error", "assertion_error"}


def plain(text: str) -> str:
    """pydantic's text without its links, type tails and class headers, on one line."""
    text = _TAIL.sub("", _LINK.sub("", text))
    lines = [ln.strip().removeprefix("Value error, ") for ln in text.splitlines()]
    return ": ".join(ln for ln in lines if ln and not _HEADER.match(ln))


def in_words(exc: Any, unknown: str = "unknown setting") -> str:
    """Every error of ``exc`` (a ``pydantic.ValidationError``) as ``path: message (got value)``,
    joined by ``; ``. ``unknown``: the words for a field the model does not have."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            msg = unknown
        else:
            msg = plain(str(err["msg"]))
            if (
                err["type"] not in _NO_VALUE
                and "input" in err
                and not isinstance(err["input"], dict | list)
            ):
                msg += f" (got {err['input']!r})"
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
