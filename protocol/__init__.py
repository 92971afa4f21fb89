"""The wire contract (docs/protocol.md): topics, device records, acks, the alert
message. Depends only on msgspec; every other package may import it."""
