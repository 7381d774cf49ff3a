-- peek: the key's bucket (and its owner's) and the clock of the node that
-- holds them, in one call to that node (a bare TIME beside the HMGET would go
-- to any node of a Redis Cluster). It writes nothing.
-- KEYS[1]: the key's bucket, as take.lua keeps it; KEYS[2], with an owner,
--   the owner's.
-- ARGV[1]: n, the key's further windows; then their periods (ms); then, with
--   KEYS[2], the owner's windows' periods to the end.
-- Returns {seconds, microseconds, at, mms, mfr, ml, dms, dfr, dl, then ms,
-- frac and limit of each further window of the key, then with an owner its
-- at and ms, frac and limit of each of its windows}: TIME, then the buckets'
-- fields, each nil if never written.
local n = tonumber(ARGV[1])
local function read(key, fields, first, last)
  for i = first, last do
    fields[#fields + 1] = ARGV[i] .. 'ms'
    fields[#fields + 1] = ARGV[i] .. 'fr'
    fields[#fields + 1] = ARGV[i] .. 'l'
  end
  return redis.call('HMGET', key, unpack(fields))
end
local t = redis.call('TIME')
local r = {t[1], t[2]}
local function add(v, count)
  for i = 1, count do r[#r + 1] = v[i] end
end
add(read(KEYS[1], {'at', 'mms', 'mfr', 'ml', 'dms', 'dfr', 'dl'}, 2, n + 1), 7 + 3 * n)
if KEYS[2] then
  add(read(KEYS[2], {'at'}, n + 2, #ARGV), 1 + 3 * (#ARGV - n - 1))
end
return r
