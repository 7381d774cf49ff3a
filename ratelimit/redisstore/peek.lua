-- peek: the key's bucket and the clock of the node that holds it, in one
-- call to that node (a bare TIME beside the HMGET would go to any node of a
-- Redis Cluster). It writes nothing.
-- KEYS[1]: the key's bucket, as take.lua keeps it.
-- Returns {seconds, microseconds, at, mms, mfr, ml, dms, dfr, dl}: TIME, then
-- the bucket's fields, each nil if never written.
local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'at', 'mms', 'mfr', 'ml', 'dms', 'dfr', 'dl')
local r = {t[1], t[2]}
for i = 1, 7 do r[i + 2] = v[i] end
return r
