-- A key's further windows beyond per_minute and per_day, as JSON:
-- [{"limit": 1000, "per_seconds": 3600}]; '[]' for none (every key created
-- before this version).
ALTER TABLE gatehouse_keys ADD COLUMN windows TEXT NOT NULL DEFAULT '[]';
