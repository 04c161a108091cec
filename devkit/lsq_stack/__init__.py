"""The local test stack around the LeadSquared simulator (:mod:`lsq_sim`): Kafka-protocol broker
and Schema Registry launchers, the demo, benchmarks, reliability trials and sample CDC events.
Part of the development kit (``devkit/``): never in the connector's wheel or image."""
