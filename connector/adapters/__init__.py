"""[I/O] The connector's edges: the Kafka consumer, the outcome writer and its read-back, the
HTTP submitter, schema sources, the health port and its metrics, one factory of Kafka clients."""
