"""The broker launcher's order of choice: external cluster, then testcontainers, then Tansu."""

from __future__ import annotations

from lsq_stack.broker import DEFAULT_KAFKA_IMAGE, choose_broker, kafka_image


def _never(_: str) -> bool:
    raise AssertionError("Docker must not be probed unless testcontainers is requested")


def test_bootstrap_servers_env_wins_over_everything() -> None:
    """KAFKA_BOOTSTRAP_SERVERS selects the external cluster without probing Docker."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "LSQ_TEST_BROKER": "testcontainers"}
    choice = choose_broker(env, _never)
    assert (choice.kind, choice.reason) == ("external", "KAFKA_BOOTSTRAP_SERVERS=kafka:9092")


def test_testcontainers_when_requested_and_image_present() -> None:
    """testcontainers is used only when requested and Docker holds the Kafka image."""
    probed: list[str] = []

    def has(image: str) -> bool:
        probed.append(image)
        return True

    choice = choose_broker({"LSQ_TEST_BROKER": "testcontainers"}, has)
    assert choice.kind == "testcontainers"
    assert probed == [DEFAULT_KAFKA_IMAGE]


def test_testcontainers_requested_without_engine_falls_back_to_tansu_and_says_why() -> None:
    """Without a Docker engine the launcher uses Tansu and names the missing image."""
    env = {"LSQ_TEST_BROKER": "testcontainers", "LSQ_KAFKA_IMAGE": "my/kafka:1"}
    choice = choose_broker(env, lambda _: False)
    assert choice.kind == "tansu"
    assert "no Docker engine with image my/kafka:1" in choice.reason


def test_default_is_tansu() -> None:
    """With no settings the launcher starts Tansu."""
    assert choose_broker({}, _never).kind == "tansu"


def test_kafka_image_override() -> None:
    """LSQ_KAFKA_IMAGE replaces the default image; blank means default."""
    assert kafka_image({"LSQ_KAFKA_IMAGE": " x/y:2 "}) == "x/y:2"
    assert kafka_image({"LSQ_KAFKA_IMAGE": ""}) == DEFAULT_KAFKA_IMAGE
