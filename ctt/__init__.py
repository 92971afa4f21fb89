"""Operations layer of the cargo track-and-trace backend: CLI, services, broker accounts."""
