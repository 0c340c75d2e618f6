-- Where to cut a snapshot-difference batch into a slice: the id of the
-- first transaction beyond k visible rows from lo (a transaction larger
-- than a slice stays whole), or hi when fewer rows remain.
--
-- The count must walk the tx_id index in order and stop after k+1 rows,
-- whatever the backlog. With the range's bounds as parameters the planner
-- cannot tell how wide it is, and may instead fetch every row of the range
-- to sort it: reading a large backlog would then cost its whole size on
-- every page. Bitmap scans are off inside these functions only, which
-- leaves the ordered index scan.

CREATE FUNCTION slice_end(lo xid8, hi xid8, b pg_snapshot, k integer) RETURNS xid8
LANGUAGE sql STABLE
SET enable_bitmapscan = off
AS $$
	WITH first AS (SELECT tx_id FROM events
			WHERE tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
			ORDER BY tx_id LIMIT 1),
		kth AS (SELECT tx_id FROM events
			WHERE tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
			ORDER BY tx_id OFFSET k LIMIT 1)
	SELECT CASE
		WHEN (SELECT tx_id FROM kth) IS NULL THEN hi
		WHEN (SELECT tx_id FROM kth) = (SELECT tx_id FROM first) THEN ((SELECT tx_id FROM first)::text::numeric + 1)::text::xid8
		ELSE (SELECT tx_id FROM kth)
	END
$$;

CREATE FUNCTION slice_end(lo xid8, hi xid8, b pg_snapshot, k integer, cat text) RETURNS xid8
LANGUAGE sql STABLE
SET enable_bitmapscan = off
AS $$
	WITH first AS (SELECT tx_id FROM events
			WHERE category = cat AND tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
			ORDER BY tx_id LIMIT 1),
		kth AS (SELECT tx_id FROM events
			WHERE category = cat AND tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
			ORDER BY tx_id OFFSET k LIMIT 1)
	SELECT CASE
		WHEN (SELECT tx_id FROM kth) IS NULL THEN hi
		WHEN (SELECT tx_id FROM kth) = (SELECT tx_id FROM first) THEN ((SELECT tx_id FROM first)::text::numeric + 1)::text::xid8
		ELSE (SELECT tx_id FROM kth)
	END
$$;
