"""Configuration: defaults, validation, files, and ``lsq-sim`` option parsing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from lsq_sim.answers import over_quota, throttled
from lsq_sim.cli import _parser, config_from_args, main
from lsq_sim.config import (
    DEFAULT_ACCOUNT,
    Account,
    DailyQuota,
    Processing,
    RateLimit,
    SimConfig,
    load_config,
)

if TYPE_CHECKING:
    from pathlib import Path


def _config(*argv: str) -> SimConfig:
    return config_from_args(_parser().parse_args(list(argv)))


def _rate_envelope(message: str) -> dict[str, str]:
    return {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": message,
    }


def test_defaults_need_no_options() -> None:
    """No options: one fake account on 127.0.0.1, 25 calls in 5 s sliding, 403 for x-api-key."""
    config = _config()
    assert [a.name for a in config.accounts] == ["account1"]
    assert (config.host, config.port, config.api_key_status, config.error_style) == (
        "127.0.0.1",
        0,
        403,
        "http500",
    )
    assert (config.rate_limit.calls, config.rate_limit.window_s, config.rate_limit.mode) == (
        25,
        5.0,
        "sliding",
    )


def test_accounts_from_options() -> None:
    """--access-key/--secret-key/--api-key set the first account, --account adds more."""
    config = _config(
        "--access-key", "A", "--secret-key", "S", "--api-key", "K",
        "--account", "a2:s2:k2", "--account", "shop=a3:s3:k3",
    )  # fmt: skip
    assert [(a.name, a.access_key, a.secret_key, a.api_key) for a in config.accounts] == [
        ("account1", "A", "S", "K"),
        ("account2", "a2", "s2", "k2"),
        ("shop", "a3", "s3", "k3"),
    ]


def test_every_option_lands_in_the_config() -> None:
    """Each option sets its field."""
    config = _config(
        "--rate-limit", "5/1", "--rate-limit-mode", "bucket", "--throttle-style", "body200",
        "--retry-after", "2", "--limit-status-calls", "--throttle-message", "plain",
        "--daily-quota", "500", "--quota-day-seconds", "60", "--error-style", "http200",
        "--api-key-status", "401", "--processing-rate", "50", "--processing-delay", "0.5",
        "--processing-error-rate", "0.1", "--retry-schedule-scale", "0.001", "--lost-rate", "0.2",
        "--unique-fields", "EmailAddress,mx_PAN", "--activity-events", "23,105",
        "--lead-attributes", "FirstName,EmailAddress", "--error-rate", "0.05",
        "--drop-rate", "0.01", "--latency-ms", "20", "--latency-jitter-ms", "5",
        "--fault", '{"path_prefix": "/lead", "status": 500}', "--outage", "10:5:refuse",
        "--outage", "30:2", "--seed", "42", "--request-log-limit", "10", "--port", "8080",
    )  # fmt: skip
    assert config.rate_limit == RateLimit(
        calls=5, window_s=1.0, mode="bucket", style="body200", retry_after_s=2,
        limit_status_calls=True, states_limit=False,
    )  # fmt: skip
    assert config.daily_quota == DailyQuota(calls=500, day_s=60.0)
    assert (config.error_style, config.api_key_status, config.seed, config.port) == (
        "http200",
        401,
        42,
        8080,
    )
    processing = config.processing
    assert (processing.rate, processing.delay_s, processing.error_rate) == (50.0, 0.5, 0.1)
    assert (processing.retry_schedule_scale, processing.lost_rate) == (0.001, 0.2)
    assert config.store.unique_fields == ("EmailAddress", "mx_PAN")
    assert config.store.activity_events == (23, 105)
    assert config.store.lead_attributes == ("FirstName", "EmailAddress")
    assert (config.faults.error_rate, config.faults.drop_rate) == (0.05, 0.01)
    assert (config.faults.latency_ms, config.faults.latency_jitter_ms) == (20.0, 5.0)
    assert [(r.path_prefix, r.status) for r in config.faults.rules] == [("/lead", 500)]
    assert [(o.start_s, o.duration_s, o.mode) for o in config.outages] == [
        (10.0, 5.0, "refuse"),
        (30.0, 2.0, "http503"),
    ]
    assert config.request_log_limit == 10


def test_rate_limit_off_disables_the_limit() -> None:
    """--rate-limit off."""
    assert _config("--rate-limit", "off").rate_limit.enabled is False


def test_bulk_budget_defaults_to_1_in_5_s_counted_and_answered_as_the_main_one() -> None:
    """The bulk budget is 1 call in 5 s by default; mode, throttle style and Retry-After follow
    the main rate limit, and the throttle message names the bulk N."""
    config = _config(
        "--throttle-style", "body200", "--rate-limit-mode", "fixed", "--retry-after", "2"
    )
    bulk = config.account_bulk_limit(config.accounts[0])
    assert bulk == RateLimit(calls=1, window_s=5.0, mode="fixed", style="body200", retry_after_s=2)
    answer = throttled(bulk)
    assert (answer.status, answer.body, answer.headers) == (
        200,
        {
            "Status": "Error",
            "ExceptionType": "MXAPIRateLimitExceededException",
            "ExceptionMessage": "API calls exceeded the limit of 1 in 5 second(s)",
        },
        {"Retry-After": "2"},
    )


def test_bulk_rate_limit_option_and_per_account_override() -> None:
    """--bulk-rate-limit N/W or off sets the default; an account's bulk_rate_limit wins."""
    assert _config("--bulk-rate-limit", "2/1").bulk_rate_limit == RateLimit(calls=2, window_s=1.0)
    assert _config("--bulk-rate-limit", "off").bulk_rate_limit.enabled is False
    assert _config("--rate-limit", "off").bulk_rate_limit.enabled is True
    own = Account(access_key="a", secret_key="s", api_key="k", bulk_rate_limit=RateLimit(calls=7))
    other = Account(access_key="b", secret_key="s", api_key="l")
    config = SimConfig(accounts=(own, other), bulk_rate_limit=RateLimit(calls=3, window_s=2.0))
    limits = [config.account_bulk_limit(a) for a in config.accounts]
    assert [(b.calls, b.window_s) for b in limits] == [(7, 5.0), (3, 2.0)]


def test_plain_throttle_message_applies_to_the_bulk_budget_too() -> None:
    """--throttle-message plain (default limit): the bulk budget copies it, and its throttle
    message names no limit."""
    assert _config().rate_limit.states_limit is True
    config = _config("--throttle-message", "plain", "--throttle-style", "body200")
    bulk = config.account_bulk_limit(config.accounts[0])
    assert (bulk.states_limit, bulk.style) == (False, "body200")
    assert throttled(bulk).body == _rate_envelope("API rate limit exceeded")


def test_daily_quota_options_default_and_per_account_override() -> None:
    """No quota by default; --daily-quota N sets every account's (a day of 86400 s unless
    --quota-day-seconds); an account's own daily_quota wins."""
    assert _config().daily_quota is None
    assert _config("--daily-quota", "5").daily_quota == DailyQuota(calls=5, day_s=86400.0)
    own = Account(access_key="a", secret_key="s", api_key="k", daily_quota=DailyQuota(calls=7))
    other = Account(access_key="b", secret_key="s", api_key="l")
    config = SimConfig(accounts=(own, other), daily_quota=DailyQuota(calls=3, day_s=2.0))
    assert [config.account_quota(a) for a in config.accounts] == [
        DailyQuota(calls=7, day_s=86400.0),
        DailyQuota(calls=3, day_s=2.0),
    ]
    assert SimConfig().account_quota(DEFAULT_ACCOUNT) is None


def test_quota_options_over_a_file_with_a_null_quota(tmp_path: Path) -> None:
    """A dumped SimConfig (as SimProcess passes it) has ``daily_quota: null``; the quota options
    still set it."""
    file = tmp_path / "sim.json"
    file.write_text(SimConfig().model_dump_json())
    config = _config("--config", str(file), "--daily-quota", "5", "--quota-day-seconds", "3")
    assert config.daily_quota == DailyQuota(calls=5, day_s=3.0)


def test_failure_and_record_ttl_options() -> None:
    """--failure-rate, --failure-kinds (comma-separated) and --task-record-ttl set their fields;
    by default nothing fails after acceptance (every kind allowed) and records have no TTL."""
    default = _config()
    assert (default.processing.failure_rate, default.task_record_ttl_s) == (0.0, None)
    assert default.processing.failure_kinds == ("duplicate", "not_found", "unknown_attribute")
    config = _config(
        "--failure-rate", "0.05", "--failure-kinds", "duplicate, not_found",
        "--task-record-ttl", "30",
    )  # fmt: skip
    assert (config.processing.failure_rate, config.processing.failure_kinds) == (
        0.05,
        ("duplicate", "not_found"),
    )
    assert config.task_record_ttl_s == 30.0


def test_failure_and_ttl_options_over_files_with_null_or_set_sections(tmp_path: Path) -> None:
    """Over a dumped SimConfig (``task_record_ttl_s: null``, as SimProcess passes it), over a
    YAML file whose processing section is null, and over one that sets other processing
    options (kept), the options still apply."""
    dumped = tmp_path / "sim.json"
    dumped.write_text(SimConfig(processing=Processing(rate=7.0)).model_dump_json())
    config = _config(
        "--config", str(dumped), "--failure-rate", "1", "--failure-kinds", "unknown_attribute",
        "--task-record-ttl", "0.5",
    )  # fmt: skip
    assert (config.processing.rate, config.processing.failure_rate) == (7.0, 1.0)
    assert (config.processing.failure_kinds, config.task_record_ttl_s) == (
        ("unknown_attribute",),
        0.5,
    )
    null = tmp_path / "null.yaml"
    null.write_text("processing:\ntask_record_ttl_s:\n")
    config = _config("--config", str(null), "--failure-rate", "0.5", "--task-record-ttl", "2")
    assert (config.processing.failure_rate, config.task_record_ttl_s) == (0.5, 2.0)
    ttl_null = tmp_path / "ttl.yaml"
    ttl_null.write_text("task_record_ttl_s:\n")
    assert _config("--config", str(ttl_null)).task_record_ttl_s is None


def test_options_override_the_config_file(tmp_path: Path) -> None:
    """--config FILE (YAML) is read first, options win."""
    file = tmp_path / "sim.yaml"
    file.write_text(
        "rate_limit: {calls: 10, window_s: 2}\n"
        "accounts: [{access_key: fa, secret_key: fs, api_key: fk}]\n"
        "processing: {rate: 7}\n"
    )
    config = _config("--config", str(file), "--rate-limit-mode", "fixed", "--api-key", "K")
    assert (config.rate_limit.calls, config.rate_limit.window_s, config.rate_limit.mode) == (
        10,
        2.0,
        "fixed",
    )
    assert (config.accounts[0].access_key, config.accounts[0].api_key) == ("fa", "K")
    assert config.processing.rate == 7.0


def test_json_config_file_round_trips(tmp_path: Path) -> None:
    """A SimConfig dumped as JSON loads back equal (this is how SimProcess passes it)."""
    config = SimConfig(accounts=(Account(access_key="a", secret_key="s", api_key="k"),), seed=3)
    file = tmp_path / "sim.json"
    file.write_text(config.model_dump_json())
    assert load_config(file) == config


def test_unknown_keys_and_bad_values_are_rejected() -> None:
    """Config validation names the problem."""
    with pytest.raises(ValidationError, match="rate_limt"):
        SimConfig.model_validate({"rate_limt": {}})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        SimConfig.model_validate({"faults": {"error_rate": 2}})


def test_accounts_must_not_share_keys() -> None:
    """Two accounts with the same access key or api key are a configuration error."""
    same = Account(access_key="a", secret_key="s", api_key="k")
    with pytest.raises(ValidationError, match="share the same access_key"):
        SimConfig(accounts=(same, same))
    with pytest.raises(ValidationError, match="share the same api_key"):
        SimConfig(accounts=(same, same.model_copy(update={"access_key": "b", "name": "x"})))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-limit", "25"], "expected N/W"),
        (["--bulk-rate-limit", "1"], "expected N/W"),
        (["--account", "a:b"], "expected [NAME=]ACCESS:SECRET:APIKEY"),
        (["--outage", "soon"], "expected START:DURATION[:MODE]"),
        (["--fault", "[1]"], "expected a JSON object"),
        (["--activity-events", "a,b"], "expected comma-separated integers"),
        (["--throttle-style", "loud"], "invalid choice"),
        (["--throttle-message", "loud"], "expected limit or plain, not 'loud'"),
        (["--daily-quota", "0"], "invalid configuration: daily_quota.calls"),
        (["--quota-day-seconds", "3"], "invalid configuration: daily_quota.calls: Field required"),
        (["--daily-quota", "5", "--quota-day-seconds", "0"], "daily_quota.day_s"),
        (["--outage", "1:2:flood"], "invalid configuration: outages.0.mode"),
        (["--processing-rate", "0"], "invalid configuration: processing.rate"),
        (["--failure-rate", "2"], "invalid configuration: processing.failure_rate"),
        (["--failure-kinds", "duplicate,timeout"], "processing.failure_kinds.1: Input should be"),
        (["--failure-kinds", ","], "invalid configuration: processing.failure_kinds"),
        (["--task-record-ttl", "-1"], "invalid configuration: task_record_ttl_s"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad options or values: a clear message on stderr and exit code 2."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --config file is a configuration error."""
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(tmp_path / "absent.yaml")])
    assert caught.value.code == 2
    assert "absent.yaml" in capsys.readouterr().err


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists every option with a description, and exits 0."""
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    for action in _parser()._actions:
        assert action.help, action.option_strings
        assert action.option_strings[0] in out


@pytest.mark.parametrize(
    ("style", "status", "body"),
    [
        (
            "http429",
            429,
            {
                "Status": "Error",
                "ExceptionType": "MXAPIRateLimitExceededException",
                "ExceptionMessage": "API calls exceeded the limit of 25 in 5 second(s)",
            },
        ),
        (
            "body200",
            200,
            {
                "Status": "Error",
                "ExceptionType": "MXAPIRateLimitExceededException",
                "ExceptionMessage": "API calls exceeded the limit of 25 in 5 second(s)",
            },
        ),
        ("gateway429", 429, {"message": "Too Many Requests"}),
    ],
)
def test_throttle_answer_per_style(style: str, status: int, body: object) -> None:
    """Each throttle style's status and body; no Retry-After unless configured."""
    answer = throttled(RateLimit.model_validate({"style": style}))
    assert (answer.status, answer.body, answer.headers) == (status, body, {})
    assert throttled(RateLimit(retry_after_s=3)).headers == {"Retry-After": "3"}


@pytest.mark.parametrize(
    ("style", "states_limit", "status", "body"),
    [
        ("http429", True, 429, _rate_envelope("API calls exceeded the limit of 25 in 5 second(s)")),
        ("http429", False, 429, _rate_envelope("API rate limit exceeded")),
        ("body200", False, 200, _rate_envelope("API rate limit exceeded")),
        ("gateway429", False, 429, {"message": "Too Many Requests"}),
    ],
)
def test_throttle_message_without_the_limit(
    style: str, states_limit: bool, status: int, body: object
) -> None:
    """states_limit False: the MX styles say "API rate limit exceeded" (same type and status);
    gateway429 is unchanged."""
    answer = throttled(RateLimit.model_validate({"style": style, "states_limit": states_limit}))
    assert (answer.status, answer.body) == (status, body)


def test_over_quota_answers_in_the_rate_limit_style_naming_the_quota() -> None:
    """A call over the daily quota is throttled in the main limit's style and Retry-After, with
    the documented message naming the quota's calls and day (or the plain message)."""
    quota = DailyQuota(calls=5, day_s=3.0)
    answer = over_quota(RateLimit(retry_after_s=1), quota)
    assert (answer.status, answer.kind, answer.headers) == (429, "throttled", {"Retry-After": "1"})
    assert answer.body == _rate_envelope("API calls exceeded the limit of 5 in 3 second(s)")
    plain = over_quota(RateLimit(style="body200", states_limit=False), quota)
    assert (plain.status, plain.body) == (200, _rate_envelope("API rate limit exceeded"))
    assert over_quota(RateLimit(style="gateway429"), quota).body == {"message": "Too Many Requests"}
    day = over_quota(RateLimit(), DailyQuota(calls=1000)).body
    assert day == _rate_envelope("API calls exceeded the limit of 1000 in 86400 second(s)")


def test_fault_option_accepts_a_full_rule() -> None:
    """--fault takes the JSON of a FaultRule."""
    rule = {"body_contains": "x", "action": "drop", "times": 2, "probability": 0.5}
    config = _config("--fault", json.dumps(rule))
    assert config.faults.rules[0].model_dump(include=set(rule)) == rule
