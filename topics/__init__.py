"""foryou's wire contract: topic specs, the record types every producer builds from (`schemas`), the strict
decoders every consumer reads with (`validation`), bounds, dead letters, partitioning, and the JSON Schema of
each topic derived from the record types (`json_schema`; the files are in topics/json-schemas/).

Pure code, no Kafka connection, importing nothing of foryou's other rooms; docs/topics.md is the reference
of every topic, key and field.
"""
