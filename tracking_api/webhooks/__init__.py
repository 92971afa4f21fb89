"""Outbound webhooks following the Standard Webhooks specification (docs/integration.md,
"Webhooks"): the database's triggers fill the outbox (schema/029), ``dispatcher`` delivers,
``signing`` signs, ``sender`` posts to a vetted address, ``urls`` says which URLs are allowed."""
