"""[pure] Topic patterns (``routes[].topic_pattern``): one dialect that Python and librdkafka read
the same way, so that the connector subscribes to exactly the topics its routes consume.

librdkafka matches a subscription that starts with ``^`` against every topic in the cluster with
the C library's POSIX extended regular expressions (``regcomp(REG_EXTENDED | REG_NOSUB)``); the
connector routes records with Python's ``re.fullmatch``. The two dialects agree only on a common
core, so a pattern is accepted only when written in it:

- literal characters (printable ASCII; topic names hold only letters, digits, ``.``, ``_``, ``-``),
  ``.``, and a backslash before one of ``.[]()*+?{}|^$\\`` for that character itself;
- bracket expressions of letters, digits, ``_`` and ``.``, with ranges inside ``0-9``, ``a-z`` or
  ``A-Z``, ``^`` first to negate, ``-`` first or last for itself;
- ``*``, ``+``, ``?``, ``{m}``, ``{m,}`` and ``{m,n}`` after an atom (never two in a row: Python
  reads ``*?`` as lazy), groups ``(...)`` and alternation ``|`` with no empty branch;
- ``^`` at the very start and ``$`` at the very end, which change nothing: a pattern always matches
  whole topic names;
- at most 2,000 atoms once repeats are written out: the C library compiles ``{m,n}`` by copying
  what it repeats, so ``((a{255}){255}){255}`` takes it seconds where Python takes milliseconds.

Everything else (``\\d``, ``\\w``, ``(?:...)``, ``(?i)``, lookarounds, back references, lazy
quantifiers, ``[[:alpha:]]``, a backslash inside brackets, ``{,n}``) means something else to one of
the two, and is refused at start with the reason.
"""

from __future__ import annotations

import string

__all__ = ["PatternError", "parse", "subscription"]

_META = frozenset(".[]()*+?{}|^$\\")
_LITERAL = frozenset(string.printable) - _META - frozenset(string.whitespace)
_IN_BRACKETS = frozenset(string.ascii_letters + string.digits + "_.")
_RANGES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
_MAX_DEPTH = 50
_MAX_REPEAT = 255
_MAX_SIZE = 2000  # atoms once repeats are written out; topic names have at most 249 characters
_HINTS = {"d": " (write [0-9] for \\d)", " ": " (topic names hold no spaces)"}


class PatternError(ValueError):
    """The pattern is outside the dialect both readers share; the message says where and why."""


def parse(pattern: str) -> str:
    """The pattern without its optional ``^`` / ``$`` anchors, once checked to mean the same to
    Python and to librdkafka; :class:`PatternError` otherwise."""
    body = pattern.removeprefix("^")
    if body.endswith("$") and not _escaped(body, len(body) - 1):
        body = body[:-1]
    if not body:
        raise PatternError("empty pattern")
    reader = _Reader(body)
    size = reader.alternation(0)
    if reader.at < len(body):
        reader.fail("unbalanced ')'")
    if size > _MAX_SIZE:
        raise PatternError(
            f"repeats make {size} atoms, more than {_MAX_SIZE} (librdkafka's C library would take"
            " seconds to compile it)"
        )
    return body


def subscription(body: str) -> str:
    """The librdkafka subscription for a parsed pattern: anchored at both ends."""
    return f"^({body})$"


def _escaped(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 1


class _Reader:
    """A recursive-descent check of one pattern body; each step returns the size of what it read
    once repeats are written out."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def fail(self, why: str) -> None:
        raise PatternError(f"at position {self.at}: {why}")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def alternation(self, depth: int) -> int:
        if depth > _MAX_DEPTH:
            self.fail(f"groups nested deeper than {_MAX_DEPTH}")
        size = self.branch(depth)
        while self.peek() == "|":
            self.at += 1
            size += self.branch(depth)
        return size

    def branch(self, depth: int) -> int:
        if self.peek() in ("", "|", ")"):
            self.fail("empty alternative (librdkafka and Python disagree on it)")
        size = 0
        while self.peek() not in ("", "|", ")"):
            atom = self.atom(depth)
            size += atom * self.quantifier()
        return size

    def atom(self, depth: int) -> int:
        char = self.peek()
        if char == "(":
            return self.group(depth)
        if char == "[":
            self.brackets()
        elif char == "\\":
            escaped = self.text[self.at + 1 : self.at + 2]
            if not escaped or escaped not in _META:
                hint = _HINTS.get(escaped, "")
                self.fail(f"'\\{escaped}' is not the same in librdkafka{hint}")
            self.at += 2
        elif char == "." or char in _LITERAL:
            self.at += 1
        elif char in "^$":
            self.fail(f"'{char}' is allowed only at the very start or end")
        elif char in "*+?{":
            self.fail(f"'{char}' repeats nothing")
        else:
            hint = _HINTS.get(char, f" (write it as \\{char} if it is meant)")
            self.fail(f"{char!r} cannot be in a topic name{hint}")
        return 1

    def group(self, depth: int) -> int:
        self.at += 1
        if self.peek() == "?":
            self.fail("'(?' extensions are Python's only (write a plain group)")
        size = self.alternation(depth + 1)
        if self.peek() != ")":
            self.fail("missing ')'")
        self.at += 1
        return size

    def brackets(self) -> None:
        end = self.text.find("]", self.at + 2)  # a ']' right after '[' would be a literal
        if end < 0:
            self.fail("missing ']'")
        inside = self.text[self.at + 1 : end].removeprefix("^")
        if not inside or "--" in inside:
            self.fail("empty bracket expression, or '--' in one")
        core = inside.removeprefix("-").removesuffix("-")
        for low, high in _ranges(core):
            if low not in _IN_BRACKETS or high not in _IN_BRACKETS:
                bad = low if low not in _IN_BRACKETS else high
                self.fail(
                    f"{bad!r} inside brackets is read differently (letters, digits, _ . only)"
                )
            if low != high and not any(low in r and high in r and low < high for r in _RANGES):
                self.fail(f"range {low}-{high} must lie within 0-9, a-z or A-Z, in order")
        self.at = end + 1

    def quantifier(self) -> int:
        """Copies of its atom a repeat makes (1 without one, and for ``*``, ``+``, ``?``)."""
        char, copies = self.peek(), 1
        if char and char in "*+?":
            self.at += 1
        elif char == "{":
            end = self.text.find("}", self.at)
            low, _, high = self.text[self.at + 1 : end].partition(",")
            if end < 0 or not _number(low) or not (_number(high) or not high):
                self.fail("'{' must start a repeat {m}, {m,} or {m,n}")
            if int(low) > _MAX_REPEAT or (high and not int(low) <= int(high) <= _MAX_REPEAT):
                self.fail(f"repeat counts must be in order and at most {_MAX_REPEAT}")
            copies = max(1, int(high or low))
            self.at = end + 1
        else:
            return copies
        if self.peek() in ("*", "+", "?", "{"):
            self.fail("a repeat cannot be repeated (Python reads *? +? ?? as lazy)")
        return copies


def _number(text: str) -> bool:
    return bool(text) and all(char in string.digits for char in text)


def _ranges(core: str) -> list[tuple[str, str]]:
    """A bracket expression's items as (low, high) pairs; single characters are (c, c)."""
    items, index = [], 0
    while index < len(core):
        if core[index + 1 : index + 2] == "-" and index + 2 < len(core):
            items.append((core[index], core[index + 2]))
            index += 3
        else:
            items.append((core[index], core[index]))
            index += 1
    return items
