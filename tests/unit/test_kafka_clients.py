"""The one Kafka-client factory: settings librdkafka refuses are a configuration error naming the
section (the CLI exits 2 with it), never a traceback."""

from __future__ import annotations

import pytest

from connector.adapters.kafka import build_consumer, build_producer
from connector.errors import ConfigError


def test_refused_settings_name_the_section_and_librdkafka_s_reason() -> None:
    bad = {"bootstrap.servers": "127.0.0.1:1", "no.such.property": "1"}
    with pytest.raises(ConfigError, match=r"^kafka\.producer: librdkafka refused the settings: .*"):
        build_producer(bad)
    with pytest.raises(ConfigError, match=r"^kafka\.consumer: librdkafka refused the settings: .*"):
        build_consumer(bad | {"group.id": "g"})
    with pytest.raises(ConfigError, match=r"no\.such\.property"):
        build_consumer(bad | {"group.id": "g"})
