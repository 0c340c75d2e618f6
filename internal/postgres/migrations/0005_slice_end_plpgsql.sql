-- slice_end (0003) again, in PL/pgSQL. A SQL function that carries a SET
-- clause is never inlined, and its body was planned afresh on every
-- call: about 0.3 ms of planning on every page read, which a subscription
-- feed woken by each append pays hundreds of times a second. PL/pgSQL
-- keeps its statements' plans for the session. It also asks for the first
-- row only when the batch is larger than a slice, which it seldom is at
-- the head. The result is the same: the id of the first transaction
-- beyond k visible rows from lo (a transaction larger than a slice stays
-- whole), or hi when fewer rows remain. Bitmap scans stay off, for the
-- reason 0003 gives.

CREATE OR REPLACE FUNCTION slice_end(lo xid8, hi xid8, b pg_snapshot, k integer) RETURNS xid8
LANGUAGE plpgsql STABLE
SET enable_bitmapscan = off
AS $$
DECLARE
	kth xid8;
	first xid8;
BEGIN
	SELECT tx_id INTO kth FROM events
		WHERE tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
		ORDER BY tx_id OFFSET k LIMIT 1;
	IF kth IS NULL THEN
		RETURN hi;
	END IF;
	SELECT tx_id INTO first FROM events
		WHERE tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
		ORDER BY tx_id LIMIT 1;
	IF kth = first THEN
		RETURN (first::text::numeric + 1)::text::xid8;
	END IF;
	RETURN kth;
END
$$;

CREATE OR REPLACE FUNCTION slice_end(lo xid8, hi xid8, b pg_snapshot, k integer, cat text) RETURNS xid8
LANGUAGE plpgsql STABLE
SET enable_bitmapscan = off
AS $$
DECLARE
	kth xid8;
	first xid8;
BEGIN
	SELECT tx_id INTO kth FROM events
		WHERE category = cat AND tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
		ORDER BY tx_id OFFSET k LIMIT 1;
	IF kth IS NULL THEN
		RETURN hi;
	END IF;
	SELECT tx_id INTO first FROM events
		WHERE category = cat AND tx_id >= lo AND tx_id < hi AND pg_visible_in_snapshot(tx_id, b)
		ORDER BY tx_id LIMIT 1;
	IF kth = first THEN
		RETURN (first::text::numeric + 1)::text::xid8;
	END IF;
	RETURN kth;
END
$$;
