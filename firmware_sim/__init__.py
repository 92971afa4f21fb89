"""Simulated trackers and e-seals that publish over MQTT like the real firmware."""
