-- Tail: each statement that stores events announces, per tenant, the highest sequence it stored, on channel
-- audit_events (src/store/event-feed.ts listens). NOTIFY is transactional: listeners hear it only once the rows are
-- committed and visible, and then read them by sequence. A trigger rather than a statement in EventStore.append, so
-- every path that stores events notifies and the write path pays no extra round trip.
CREATE FUNCTION audit_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('audit_events', json_build_object('tenant', tenant, 'sequence', max(sequence))::text)
    FROM inserted GROUP BY tenant;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_notify();
