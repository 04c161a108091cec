"""Run as a separate process: join a group, read `count` records, print their (partition, offset)
pairs as JSON. Used to prove a new process resumes exactly at the committed offsets."""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer


def main() -> None:
    config, topic, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    consumer = Consumer(config)
    consumer.subscribe([topic])
    seen: list[tuple[int | None, int | None]] = []
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        seen += [(m.partition(), m.offset()) for m in consumer.consume(100, 0.2) if not m.error()]
    seen += [(m.partition(), m.offset()) for m in consumer.consume(100, 1.0) if not m.error()]
    consumer.close()
    sys.stdout.write(json.dumps(seen))


if __name__ == "__main__":
    main()
