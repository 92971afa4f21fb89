"""What every service shares besides the wire protocol: the settings base and the logging set-up.

At the bottom of the import graph with ``protocol``: imports neither ingest,
tracking_api, firmware_sim nor geofence."""
