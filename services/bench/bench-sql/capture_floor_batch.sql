-- pgbench floor for CaptureLead on PostgreSQL with group commit: 32 captures per transaction, the
-- same three rows each as capture_floor_one.sql (leads/s = tps x 32). See README, "Benchmarks".
\set n random(1, 2000000000)
BEGIN;
INSERT INTO lead (lead_id, tenant_id, email, email_normalized, first_name, last_name, company_name, source_channel, source_campaign, captured_at, created_at)
  SELECT gen_random_uuid()::text, 'default', 'p' || :n || '.' || :client_id || '.' || g || '@example.com', 'p' || :n || '.' || :client_id || '.' || g || '@example.com', 'Bench', 'Lead', 'Bench KK', 'bench', '', now(), now() FROM generate_series(1, 32) g
  ON CONFLICT DO NOTHING;
INSERT INTO capture_request (tenant_id, request_id, fingerprint, lead_id, created, created_at)
  SELECT 'default', 'r' || :n || '.' || :client_id || '.' || g, 'fp', 'x', true, now() FROM generate_series(1, 32) g ON CONFLICT DO NOTHING;
INSERT INTO event_outbox (event_id, tenant_id, aggregate_id, type_url, payload, traceparent, tracestate, recorded_at)
  SELECT gen_random_uuid()::text, 'default', 'x', 'type.googleapis.com/baton.capture.v1.LeadCaptured', '\x0a0b0c'::bytea, '', '', now() FROM generate_series(1, 32) g;
COMMIT;
