-- The audit trail: one row for each change an Admin makes, written in the
-- change's own transaction. seq is the change's number in gatehouse_version
-- (the last of a rotation, which announces two keys), so rows sort in the
-- order their changes committed; at is the Admin's clock, in Unix
-- milliseconds. key_id is '' for a change to an owner's limits; owner is the
-- key's owner, or the owner whose limits changed. changes is a JSON object:
-- each changed field's value before and after, as
-- {"per_minute":{"before":60,"after":5}}. Never a key or its hash. The
-- package adds and reads rows, and never updates or deletes one.
CREATE TABLE gatehouse_audit (
	seq     BIGINT PRIMARY KEY,
	at      BIGINT NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	key_id  TEXT NOT NULL,
	owner   TEXT NOT NULL,
	changes TEXT NOT NULL
);

CREATE INDEX gatehouse_audit_key ON gatehouse_audit (key_id, seq);
