"""CloudWatch Logs filter patterns for unstructured events, as AWS documents them.

- terms, separated by spaces: an event matches when it contains every term (``ERROR Exception``);
- a quoted phrase matches as a whole (``"Final configuration"``), with ``\\"`` for a quote inside;
- ``?term`` terms: an event matches when it contains at least one of them (``?ERROR ?WARN``);
- ``-term`` excludes events that contain it (``ERROR -Retrying``);
- ``%regex%`` matches a regular expression anywhere in the event;
- an empty pattern matches every event.

Matching is case-sensitive, as on AWS. JSON (``{ $.x = 1 }``) and space-delimited (``[ip, user, ...]``)
patterns are not served by the local stack and are rejected with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r'([?-]?)("(?:[^"\\]|\\.)*"|\S+)')
_QUOTE_ESCAPE = re.compile(r"\\(.)")


class FilterPatternError(ValueError):
    pass


def compile_filter_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate on event messages for ``pattern``; FilterPatternError for one the stack cannot serve."""
    text = pattern.strip()
    if not text:
        return lambda message: True
    if text[0] in "{[":
        raise FilterPatternError(
            f"filterPattern {pattern!r}: JSON and space-delimited filter patterns are not supported by the"
            " local stack; use terms, quoted phrases, ?term, -term or %regex%"
        )
    if len(text) >= 2 and text[0] == text[-1] == "%":
        try:
            expression = re.compile(text[1:-1])
        except re.error as error:
            raise FilterPatternError(
                f"filterPattern {pattern!r}: invalid regular expression: {error}"
            ) from error
        return lambda message: expression.search(message) is not None
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    for operator, term in _TOKEN.findall(text):
        if term.startswith('"'):
            if len(term) < 2 or not term.endswith('"'):
                raise FilterPatternError(f"filterPattern {pattern!r}: unterminated quoted phrase")
            term = _QUOTE_ESCAPE.sub(r"\1", term[1:-1])
        {"": required, "?": optional, "-": excluded}[operator].append(term)

    def matches(message: str) -> bool:
        return (
            all(term in message for term in required)
            and (not optional or any(term in message for term in optional))
            and not any(term and term in message for term in excluded)
        )

    return matches
