-- The store's identity, made once: relay checkpoints carry it, so that a
-- relay never resumes in one store from a checkpoint of another (a store
-- created anew beside topics that hold an older store's events).
ALTER TABLE store_meta ADD COLUMN store_id uuid NOT NULL DEFAULT gen_random_uuid();
