-- Keys, stored by the SHA-256 of their plaintext only (hex), with their owner,
-- scope, limits and last use; times are Unix milliseconds. Portable SQL: the
-- same text runs on PostgreSQL and SQLite.
CREATE TABLE gatehouse_keys (
	id            TEXT PRIMARY KEY,
	hash          TEXT NOT NULL UNIQUE,
	owner         TEXT NOT NULL,
	name          TEXT NOT NULL,
	products      TEXT NOT NULL,
	per_minute    INTEGER NOT NULL,
	per_day       INTEGER NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0,
	expires_at    BIGINT,
	allowance     TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	last_used_at  BIGINT,
	request_count BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX gatehouse_keys_owner ON gatehouse_keys (owner, id);

-- One row: the number of the last change. Every write to gatehouse_keys bumps
-- it in the same transaction and records the changed key's hash under the new
-- number in gatehouse_changes, which every replica polls.
CREATE TABLE gatehouse_version (
	id      INTEGER PRIMARY KEY,
	version BIGINT NOT NULL
);

INSERT INTO gatehouse_version (id, version) VALUES (1, 0);

CREATE TABLE gatehouse_changes (
	version    BIGINT PRIMARY KEY,
	key_hash   TEXT NOT NULL,
	changed_at BIGINT NOT NULL
);
