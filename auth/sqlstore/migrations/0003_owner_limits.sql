-- The allowance all the keys of one owner share (gatehouse_keys.owner), on top
-- of each key's own: per_minute and per_day (0: none) and further windows as
-- JSON, like gatehouse_keys.windows. An owner without a row has none. A change
-- is announced in gatehouse_changes as the key_hash "owner:" followed by the
-- owner.
CREATE TABLE gatehouse_owner_limits (
	owner      TEXT PRIMARY KEY,
	per_minute INTEGER NOT NULL,
	per_day    INTEGER NOT NULL,
	windows    TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
