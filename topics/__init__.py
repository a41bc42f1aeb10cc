"""foryou's wire contract: topic specs, record schemas, strict decoders, dead letters and partitioning.

Pure code, no Kafka connection; docs/topics.md is the reference of every topic, key and field.
"""
