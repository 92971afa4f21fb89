"""MQTT ingest: device records -> validation -> TimescaleDB, dead letters, device acks."""
