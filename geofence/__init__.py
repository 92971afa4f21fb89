"""Geofence engine: pure computation on arrays (no IO, no environment)."""
