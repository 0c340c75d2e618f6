-- Deleted streams. A deletion appends the system event $StreamDeleted to
-- its stream and records its version here, in one transaction.
--   Soft (hard = false): reads of the stream show only the events after
--   version, and answer stream_deleted while there are none; appends go
--   on, continuing the stream's versions.
--   Hard: the stream is never written again (every append refuses it) and
--   its reads answer stream_deleted.
-- The events stay in the table, in $all and in their category until a
-- scavenger removes them.
CREATE TABLE stream_deletions (
	stream_id  text PRIMARY KEY,
	version    bigint NOT NULL,
	hard       boolean NOT NULL,
	deleted_at timestamptz NOT NULL DEFAULT now()
);
