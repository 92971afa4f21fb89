"""The geofence engine on every committed batch, and the alerts it raises.

``service.Alerting`` is what the pipeline calls; the other modules hold one
rule each: live evaluation, replay after late data, the pure reconciliation of
stored alerts with recomputed ones, seal events, the wall-clock sweep, the
officers' workflow relay and suspect late records.
"""

from ingest.alerting.changes import Outcome
from ingest.alerting.service import Alerting

__all__ = ["Alerting", "Outcome"]
