-- Usage: what the keys were charged for, one row per hour (period, the
-- hour's start in Unix milliseconds, UTC), key, owner, product and status
-- class ('2xx', '3xx', '4xx', '5xx'): the requests and the cost units. A
-- flush adds to its rows (see Usage.Flush) and never rewrites them.
CREATE TABLE gatehouse_usage (
	period   BIGINT NOT NULL,
	key_id   TEXT NOT NULL,
	owner    TEXT NOT NULL,
	product  TEXT NOT NULL,
	status   TEXT NOT NULL,
	requests BIGINT NOT NULL,
	cost     BIGINT NOT NULL,
	PRIMARY KEY (period, key_id, owner, product, status)
);

CREATE INDEX gatehouse_usage_key ON gatehouse_usage (key_id, period);

CREATE INDEX gatehouse_usage_owner ON gatehouse_usage (owner, period);

CREATE INDEX gatehouse_usage_product ON gatehouse_usage (product, period);

-- The flushes applied, by batch id, in the same transaction as their counts:
-- a flush retried after its reply was lost finds its id and adds nothing.
-- Kept for UsageBatchRetention, then pruned by later flushes.
CREATE TABLE gatehouse_usage_batches (
	id         TEXT PRIMARY KEY,
	flushed_at BIGINT NOT NULL
);

CREATE INDEX gatehouse_usage_batches_flushed ON gatehouse_usage_batches (flushed_at);
