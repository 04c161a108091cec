"""[pure] From a consumed record to a LeadSquared payload: decode (Avro, Confluent wire format,
logical types), unwrap (the CDC envelope), map (the route's mapping); a :class:`route.Route` runs
the three for one record."""
