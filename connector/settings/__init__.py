"""The configuration: the settings model (validated by pydantic, every key documented in the
README), loading it from YAML, environment and secret files, and the topic-pattern dialect."""
