-- pgbench floor for CaptureLead on PostgreSQL: the three rows a capture must write at least (lead,
-- request fingerprint, outbox event), one capture per transaction, values made by the server (no
-- lookups, no company row, no relay, no gRPC). See README, "Benchmarks".
\set n random(1, 2000000000)
BEGIN;
INSERT INTO lead (lead_id, tenant_id, email, email_normalized, first_name, last_name, company_name, source_channel, source_campaign, captured_at, created_at)
  VALUES (gen_random_uuid()::text, 'default', 'p' || :n || '.' || :client_id || '@example.com', 'p' || :n || '.' || :client_id || '@example.com', 'Bench', 'Lead', 'Bench KK', 'bench', '', now(), now())
  ON CONFLICT DO NOTHING;
INSERT INTO capture_request (tenant_id, request_id, fingerprint, lead_id, created, created_at)
  VALUES ('default', 'r' || :n || '.' || :client_id, 'fp', 'x', true, now()) ON CONFLICT DO NOTHING;
INSERT INTO event_outbox (event_id, tenant_id, aggregate_id, type_url, payload, traceparent, tracestate, recorded_at)
  VALUES (gen_random_uuid()::text, 'default', 'x', 'type.googleapis.com/baton.capture.v1.LeadCaptured', '\x0a0b0c'::bytea, '', '', now());
COMMIT;
