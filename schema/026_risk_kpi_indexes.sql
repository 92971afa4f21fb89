-- Indexes for the risk scoring and the Time Release figures (issue 13). Measured on 50,000
-- shipments, 500,000 milestones and 100,000 alerts (a year): the operator's record took 20 ms
-- (a scan of shipments) and the route's 25 ms per registration; the figures scan the
-- milestones of their window by kind.
CREATE INDEX shipments_operator ON shipments (operator) WHERE operator IS NOT NULL;
CREATE INDEX shipments_route_departed ON shipments (route_id, departed_at);
CREATE INDEX shipment_events_kind_at ON shipment_events (kind, at);
