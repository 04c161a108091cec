"""The local test stack: Kafka-protocol broker, Schema Registry and LeadSquared simulator."""
