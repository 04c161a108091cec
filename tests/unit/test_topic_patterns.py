"""Topic patterns mean the same to the connector and to librdkafka. The oracle is glibc's
``regcomp(REG_EXTENDED | REG_NOSUB)`` + ``regexec``, which librdkafka applies to a subscription
starting with ``^``. Generated patterns from the accepted dialect are all accepted by ``parse``. For
each one and for random and near-matching topic names, ``re.fullmatch(body, topic)`` (how a route
matches) agrees with glibc on ``subscription(body)`` (what the consumer subscribes to). Patterns
the two engines read differently are refused with a message saying where and why. A bad
``routes[].topic_pattern`` fails validation at start and names the route and the field."""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import re
import string
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connector.errors import ConfigError
from connector.settings.load import load_settings
from connector.settings.model import Settings
from connector.settings.patterns import PatternError, parse, subscription
from tests.unit.test_config import BASE

if TYPE_CHECKING:
    from pathlib import Path

_REG_EXTENDED, _REG_NOSUB, _REG_NOMATCH = 1, 8, 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))

TOPIC_CHARS = string.ascii_letters + string.digits + "._-"
META = ".[]()*+?{}|^$\\"


def glibc_matches(regex: str, topic: str) -> bool:
    """Whether glibc's POSIX ERE ``regex`` (as librdkafka compiles it) matches ``topic``."""
    compiled = ctypes.create_string_buffer(256)  # sizeof(regex_t) is 64 on x86_64 glibc
    code = _LIBC.regcomp(compiled, regex.encode("ascii"), _REG_EXTENDED | _REG_NOSUB)
    if code != 0:
        raise AssertionError(f"glibc regcomp refused {regex!r} (error {code})")
    try:
        result = _LIBC.regexec(compiled, topic.encode("ascii"), 0, None, 0)
    finally:
        _LIBC.regfree(compiled)
    if result not in (0, _REG_NOMATCH):
        raise AssertionError(f"glibc regexec failed on {regex!r} (error {result})")
    return bool(result == 0)


def python_matches(body: str, topic: str) -> bool:
    """How a route matches a topic (``RouteSettings.matches``)."""
    return re.fullmatch(body, topic) is not None


def test_oracle_sanity() -> None:
    """The oracle is a POSIX ERE matcher: it searches (hence the anchors) and knows no ``\\d``."""
    assert glibc_matches("leads", "crm.leads_archive")
    assert not glibc_matches("^(crm\\.leads)$", "crm.leads_archive")
    assert glibc_matches("^(a|ab)(c|bcd)(d*)$", "abcd")
    assert not glibc_matches("^\\d$", "1")  # glibc reads \d as a literal 'd'
    assert glibc_matches("^\\d$", "d")


# --- the accepted dialect, as a grammar -----------------------------------------------------------

_CLASSES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
_IN_BRACKETS = string.ascii_letters + string.digits + "_."
_RANGES = [f"{low}-{high}" for chars in _CLASSES for low in chars for high in chars if low <= high]


def _brackets(items: list[str], negated: bool, dash: str) -> str:
    dash = dash if items else "first"
    inside = ("-" if dash == "first" else "") + "".join(items) + ("-" if dash == "last" else "")
    return "[" + ("^" if negated else "") + inside + "]"


#: ``[...]``: letters, digits, ``_`` and ``.``, ranges inside one class, ``^`` to negate, ``-``
#: first or last.
BRACKETS = st.builds(
    _brackets,
    st.lists(st.one_of(st.sampled_from(_IN_BRACKETS), st.sampled_from(_RANGES)), max_size=4),
    st.booleans(),
    st.sampled_from(["", "first", "last"]),
)

_LITERALS = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits + "_-"),
    st.sampled_from([f"\\{c}" for c in META]),
)
_SINGLE = st.one_of(_LITERALS, st.just("."), BRACKETS)

#: A generated piece of pattern and its width: how many variable-length repeats a match runs
#: through, which bounds Python's backtracking on a topic that does not match (the property tests
#: compare the engines, not Python's speed on ``(.*.*){3}``).
Piece = tuple[str, int]
_MAX_WIDTH = 4


def _quantifiers(unbounded: bool) -> list[tuple[str, int, bool]]:
    """(quantifier, most repeats, whether the count varies); the most is 3 for unbounded ones."""
    counted = [(low, high) for low in range(3) for high in range(low, 3)]
    out = [("", 1, False), ("?", 1, True)]
    out += [(f"{{{low}}}", low, False) for low in range(3)]
    out += [(f"{{{low},{high}}}", high, low < high) for low, high in counted]
    if unbounded:
        out += [("*", 3, True), ("+", 3, True)] + [(f"{{{low},}}", 3, True) for low in range(3)]
    return out


def _join(branches: list[list[Piece]]) -> Piece:
    text = "|".join("".join(piece for piece, _ in branch) for branch in branches)
    return text, max(sum(width for _, width in branch) for branch in branches)


def _body(depth: int, group_unbounded: bool) -> st.SearchStrategy[Piece]:
    """Bodies with groups nested ``depth`` deep (strategies built once: drawing stays fast)."""
    atom: st.SearchStrategy[Piece] = st.tuples(_SINGLE, st.sampled_from(_quantifiers(True))).map(
        lambda pair: (pair[0] + pair[1][0], int(pair[1][2]))
    )
    if depth > 0:
        group = st.tuples(
            _body(depth - 1, group_unbounded), st.sampled_from(_quantifiers(group_unbounded))
        ).map(lambda pair: (f"({pair[0][0]}){pair[1][0]}", pair[0][1] * pair[1][1] + pair[1][2]))
        atom = st.one_of(atom, atom, group)
    most = 3 if depth == 2 else 2  # nested bodies are smaller: generation stays fast
    branch = st.lists(atom, min_size=1, max_size=most)
    return st.lists(branch, min_size=1, max_size=most).map(_join)


_BODIES = {
    unbounded: _body(2, unbounded).filter(lambda piece: piece[1] <= _MAX_WIDTH)
    for unbounded in (False, True)
}


@st.composite
def patterns(draw: st.DrawFn, group_unbounded: bool) -> tuple[str, str]:
    """(pattern as a user writes it, the body expected back from ``parse``): branches of up to 3
    quantified atoms, up to 3 branches (2 and 2 inside groups), groups nested 2 deep; ``*``, ``+``
    and ``{m,}`` on groups only when ``group_unbounded`` (Python's backtracking on them is
    exponential in the topic's length: those patterns are tried on short topics)."""
    body = draw(_BODIES[group_unbounded])[0]
    start = "^" if draw(st.booleans()) else ""
    end = "$" if draw(st.booleans()) else ""
    return start + body + end, body


def _near(topic: str) -> list[str]:
    """A matching topic and the ones a character away: prefixes and extensions share a stem."""
    return [topic, topic[:-1], topic[1:], topic + "x", topic + ".", "x" + topic]


def _check(pattern: str, expected_body: str, topics: list[str]) -> None:
    body = parse(pattern)
    assert body == expected_body
    regex = subscription(body)
    for topic in topics:
        python, glibc = python_matches(body, topic), glibc_matches(regex, topic)
        assert python == glibc, f"{pattern!r} on {topic!r}: re.fullmatch {python}, glibc {glibc}"


_TOPICS = st.text(st.sampled_from(TOPIC_CHARS), max_size=30)
_ALPHABET = st.sampled_from(TOPIC_CHARS + META)  # escaped metacharacters match themselves
_PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@_PROPERTY
@given(pattern=patterns(group_unbounded=False), data=st.data())
def test_python_and_glibc_agree_on_generated_patterns(
    pattern: tuple[str, str], data: st.DataObject
) -> None:
    """Every generated pattern is accepted, and both engines agree on random topic names (up to
    30 characters) and on matching ones and their neighbours."""
    written, body = pattern
    random_topics = data.draw(st.lists(_TOPICS, max_size=8), label="random topics")
    likely = st.from_regex(body, fullmatch=True, alphabet=_ALPHABET).filter(lambda t: len(t) < 40)
    matching = data.draw(st.lists(likely, min_size=1, max_size=3), label="matching topics")
    for topic in matching:
        assert python_matches(body, topic)
    _check(written, body, random_topics + [near for t in matching for near in _near(t)])


@_PROPERTY
@given(pattern=patterns(group_unbounded=True), data=st.data())
def test_python_and_glibc_agree_on_repeated_groups(
    pattern: tuple[str, str], data: st.DataObject
) -> None:
    """The same with ``*``, ``+`` and ``{m,}`` on groups (``(a*)*``, ``(a|b.)+``), on topic names
    of up to 10 characters and on matching ones cut to 9 characters, with their neighbours."""
    written, body = pattern
    short = st.text(st.sampled_from(TOPIC_CHARS), max_size=10)
    likely = st.from_regex(body, fullmatch=True, alphabet=_ALPHABET).map(lambda t: t[:9])
    topics = data.draw(st.lists(short, max_size=6), label="random topics")
    topics += data.draw(st.lists(likely, max_size=2), label="matching topics, cut to 9")
    _check(written, body, [near for t in topics for near in _near(t)])


# --- refused and accepted examples ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("\\d+", r"at position 0: '\\d' is not the same in librdkafka"),
        ("\\w", r"at position 0: '\\w' is not the same in librdkafka"),
        ("(?:a)", r"at position 1: '\(\?' extensions are Python's only"),
        ("(?i)leads", r"at position 1: '\(\?' extensions are Python's only"),
        ("a*?", r"at position 2: a repeat cannot be repeated \(Python reads \*\? .* as lazy"),
        ("a+?", r"at position 2: a repeat cannot be repeated"),
        ("(a)\\1", r"at position 3: '\\1' is not the same in librdkafka"),
        ("[[:alpha:]]", r"at position 0: '\[' inside brackets is read differently"),
        ("[\\d]", r"at position 0: '\\\\' inside brackets is read differently"),
        ("a{,3}", r"at position 1: '\{' must start a repeat \{m\}, \{m,\} or \{m,n\}"),
        ("a||b", r"at position 2: empty alternative"),
        ("(|a)", r"at position 1: empty alternative"),
        ("a$b", r"at position 1: '\$' is allowed only at the very start or end"),
        ("a^b", r"at position 1: '\^' is allowed only at the very start or end"),
        ("*a", r"at position 0: '\*' repeats nothing"),
        ("", r"^empty pattern$"),
        ("^$", r"^empty pattern$"),
        ("[]", r"at position 0: missing '\]'"),
        ("[z-a]", r"at position 0: range z-a must lie within 0-9, a-z or A-Z, in order"),
        ("a(?=b)", r"at position 2: '\(\?' extensions are Python's only"),
        ("a b", r"at position 1: ' ' cannot be in a topic name"),
        ("(a", r"at position 2: missing '\)'"),
        ("(a{255}){255}", r"repeats make 65025 atoms, more than 2000"),
        ("a)", r"at position 1: unbalanced '\)'"),
        ("a{2,1}", r"at position 1: repeat counts must be in order"),
        ("[a-Z]", r"range a-Z must lie within"),
        ("()", r"at position 1: empty alternative"),
        ("a\\", r"at position 1: '\\' is not the same in librdkafka"),
    ],
)
def test_patterns_read_differently_are_refused(pattern: str, reason: str) -> None:
    """Each refusal says where and why."""
    with pytest.raises(PatternError, match=reason):
        parse(pattern)


TOPICS = [
    "crm.leads",
    "crm.leads_archive",
    "crm.leadsx",
    "xcrm.leads",
    "crm.lead",
    "crmxleads",
    "crm.activities",
    "crm.leads_2024",
    "crm.leads_20245",
    "crm.leads_202",
    "orders.events-v1",
    "orders.events-v12",
    "orders.events-v",
    "orders.events-v1.dlq",
    "Orders.events-v1",
    "",
]


@pytest.mark.parametrize(
    ("pattern", "matching"),
    [
        ("crm\\.leads", {"crm.leads"}),
        ("^crm\\.leads$", {"crm.leads"}),
        ("crm\\.(leads|activities)", {"crm.leads", "crm.activities"}),
        ("crm\\.leads_[0-9]{4}", {"crm.leads_2024"}),
        ("[a-z]+\\.events-v[0-9]+", {"orders.events-v1", "orders.events-v12"}),
    ],
)
def test_accepted_patterns_match_whole_topic_names(pattern: str, matching: set[str]) -> None:
    """Accepted patterns match exactly the expected topics, in both engines: never a topic that
    only starts with a match (``crm.leads_archive`` for ``crm\\.leads``)."""
    body = parse(pattern)
    assert body == pattern.removeprefix("^").removesuffix("$")
    assert {t for t in TOPICS if python_matches(body, t)} == matching
    assert {t for t in TOPICS if glibc_matches(subscription(body), t)} == matching


def test_the_subscription_without_the_end_anchor_would_take_more() -> None:
    """Why ``subscription`` anchors both ends: ``^`` + body alone subscribes to prefix-sharing
    topics that no route consumes."""
    assert subscription("crm\\.leads") == "^(crm\\.leads)$"
    assert glibc_matches("^crm\\.leads", "crm.leads_archive")
    assert not glibc_matches(subscription("crm\\.leads"), "crm.leads_archive")


# --- configuration --------------------------------------------------------------------------------


def _with_pattern(pattern: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    del data["routes"][0]["topics"]
    data["routes"][0]["topic_pattern"] = pattern
    return data


def test_settings_refuse_a_bad_topic_pattern(tmp_path: Path) -> None:
    """The error is located at the route (``routes.0``: the check spans the route's fields) and
    names the field, the position and the reason; the loaded configuration says the same."""
    with pytest.raises(ValidationError) as raised:
        Settings(**_with_pattern("crm\\.\\d+"))
    [error] = raised.value.errors(include_url=False, include_input=False)
    assert error["loc"] == ("routes", 0)
    assert error["msg"] == (
        "Value error, topic_pattern: not a usable regular expression: at position 5: "
        "'\\d' is not the same in librdkafka (write [0-9] for \\d)"
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_with_pattern("crm\\.leads*?")), encoding="utf-8")
    with pytest.raises(ConfigError) as loaded:
        load_settings(path, environ={})
    assert "routes.0: topic_pattern: not a usable regular expression: at position 11" in str(
        loaded.value
    )


def test_settings_route_and_subscribe_the_same_topics(tmp_path: Path) -> None:
    """A route with ``^crm\\.leads$`` consumes crm.leads only, and the consumer subscribes to
    exactly that: the same answer from both engines on every topic."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_with_pattern("^crm\\.leads$")), encoding="utf-8")
    loaded = load_settings(path, environ={})
    [regex] = loaded.subscription()
    assert regex == "^(crm\\.leads)$"
    for topic in TOPICS:
        routed = loaded.route_for(topic) is not None
        assert routed == glibc_matches(regex, topic) == (topic == "crm.leads")
