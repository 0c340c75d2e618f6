-- The embedded schema registry (CONTRACT.md §3). Registrations are rare and
-- take an advisory lock, so ids and versions are handed out as max + 1:
-- no sequence, no gaps, not even after a dry run that rolls back.

-- Every distinct schema, by the CRC-64-AVRO fingerprint of its Parsing
-- Canonical Form. A schema registered under several subjects has one id.
CREATE TABLE registry_schemas (
    id            integer PRIMARY KEY CHECK (id > 0),
    -- Bit pattern of the unsigned fingerprint, as events.schema_fp.
    fingerprint   bigint NOT NULL,
    canonical     text NOT NULL,
    -- The text as first registered: what GET /schemas/ids/{id} returns.
    schema        text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT registry_schemas_fingerprint UNIQUE (fingerprint)
);

CREATE TABLE registry_subjects (
    subject    text PRIMARY KEY CHECK (subject <> ''),
    -- The record's simple name when the subject follows the record-name
    -- strategy (subject = record full name): an event type, unique.
    event_type text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT registry_subjects_event_type UNIQUE (event_type)
);

CREATE TABLE registry_versions (
    subject       text NOT NULL REFERENCES registry_subjects,
    version       integer NOT NULL CHECK (version > 0),
    schema_id     integer NOT NULL REFERENCES registry_schemas,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version),
    CONSTRAINT registry_versions_subject_schema UNIQUE (subject, schema_id)
);

-- Compatibility levels: the subject '' holds the global level. No row means
-- the default (FULL_TRANSITIVE), which the registry's code holds.
CREATE TABLE registry_config (
    subject       text PRIMARY KEY,
    compatibility text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
