-- What the active outbox relay last said of itself, one row per lease
-- name. The relay's checkpoint lives in Kafka, where a writer that is not
-- the active relay cannot see it; the active relay keeps this row current
-- (at term start, at most once a second while it commits, and when it
-- halts) so that any writer can tell the console. Whether the lease is
-- held now is asked of pg_locks when the row is read, not kept here.
CREATE TABLE relay_status (
	lease                text PRIMARY KEY,
	instance             text NOT NULL,
	active_since         timestamptz NOT NULL,
	checkpoint_position  bigint NOT NULL,
	checkpoint_published bigint NOT NULL,
	-- NULL before the relay ever committed a checkpoint.
	checkpoint_at        timestamptz,
	-- The partition count of each topic published to: {"events.Order": 3}.
	partitions           jsonb NOT NULL DEFAULT '{}',
	-- NULL unless the relay is halted: {"reason", "message", "remedy", "since"}.
	halted               jsonb,
	lag_seconds          double precision NOT NULL DEFAULT 0,
	updated_at           timestamptz NOT NULL DEFAULT now()
);
