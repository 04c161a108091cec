"""lsq-sink: a Kafka sink connector that streams CRM changes into LeadSquared."""

__version__ = "0.1.0"
__all__ = ["__version__"]
