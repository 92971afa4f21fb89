"""Tracking API (FastAPI): reads the database, never imports ``ingest``."""
