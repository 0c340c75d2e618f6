-- The W3C trace context of the request that appended each event
-- (traceparent and tracestate), which the relay puts in the Kafka record
-- as ce_traceparent and ce_tracestate; NULL when the request had none and
-- the writer traces nothing.
ALTER TABLE events ADD COLUMN trace_parent text, ADD COLUMN trace_state text;
