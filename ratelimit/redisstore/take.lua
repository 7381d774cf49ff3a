-- take: one rate-limit decision for one key, atomically and at most once.
-- It is ratelimit.Bucket.Take, step for step; every number stays an integer
-- below 2^53, so Lua's doubles compute exactly what Go's int64s do.
-- KEYS[1]: the key's bucket, a hash: at (Unix ms of the last change), then
--   per window (m: minute, d: day) its debt's ms, frac and the limit l it is
--   counted in; q the ids of the last few allowed decisions. Missing is full.
-- ARGV[1], ARGV[2]: the per-minute and per-day limits (1 to 2^52).
-- ARGV[3]: "0" to use Redis's TIME, or a time in Unix ms (tests only).
-- ARGV[4]: the decision's id, 24 characters, unique to this decision.
-- Returns {allowed (1 or 0), minute ms, minute frac, day ms, day frac, now}:
-- the bucket as it stands after the decision, which the caller turns into
-- headers with ratelimit.Bucket.Decision, and the time it stands at (Unix ms,
-- never before the bucket's at).
local now
if ARGV[3] ~= '0' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local pm, pd, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local IDLEN, IDS = 24, 8

local v = redis.call('HMGET', KEYS[1], 'at', 'mms', 'mfr', 'ml', 'dms', 'dfr', 'dl', 'q')
local at = tonumber(v[1]) or 0
local mms, mfr, ml = tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
local dms, dfr, dl = tonumber(v[5]) or 0, tonumber(v[6]) or 0, tonumber(v[7]) or 0
local q = v[8] or ''

-- The bucket's clock never goes back.
if now < at then now = at end
local elapsed = now - at

-- advance: Debt.advance. Pay back elapsed ms at the old limit, then keep the
-- time until full, rounded up to the ms, at the new one.
local function advance(ms, frac, old, new)
  ms = ms - elapsed
  if ms < 0 or old == 0 then ms, frac = 0, 0 end
  if old ~= new then
    if frac > 0 then ms = ms + 1 end
    frac = 0
  end
  return ms, frac
end

-- charge: Debt.charge. One request adds window/limit ms (as a whole part and
-- a remainder); the floor of a double quotient is corrected exactly.
local function charge(ms, frac, limit, window)
  local whole = math.floor(window / limit)
  if whole * limit > window then whole = whole - 1 end
  if (whole + 1) * limit <= window then whole = whole + 1 end
  ms = ms + whole
  frac = frac + (window - whole * limit)
  if frac >= limit then
    frac = frac - limit
    ms = ms + 1
  end
  return ms, frac, ms < window or (ms == window and frac == 0)
end

mms, mfr = advance(mms, mfr, ml, pm)
dms, dfr = advance(dms, dfr, dl, pd)

-- A decision already allowed (go-redis running the script again after a lost
-- reply) is answered as allowed again, and charged nothing.
for i = 0, IDS - 1 do
  if string.sub(q, i * IDLEN + 1, (i + 1) * IDLEN) == id then
    return {1, mms, mfr, dms, dfr, now}
  end
end

local m2, f2, okm = charge(mms, mfr, pm, 60000)
local d2, g2, okd = charge(dms, dfr, pd, 86400000)
if not (okm and okd) then
  -- Refused: nothing changes.
  return {0, mms, mfr, dms, dfr, now}
end

q = string.sub(id .. q, 1, IDS * IDLEN)
local function int(x) return string.format('%d', x) end
redis.call('HSET', KEYS[1], 'at', int(now), 'mms', int(m2), 'mfr', int(f2), 'ml', int(pm),
  'dms', int(d2), 'dfr', int(g2), 'dl', int(pd), 'q', q)
-- Expire when both windows are full again (a full bucket is a missing one),
-- and never sooner than a second, so that a retried decision finds its id.
local full = math.max(m2 + 1, d2 + 1)
redis.call('PEXPIRE', KEYS[1], full + 1000)
return {1, m2, f2, d2, g2, now}
