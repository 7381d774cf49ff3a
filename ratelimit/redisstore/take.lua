-- take: one rate-limit decision for one key, atomically.
-- KEYS[1], KEYS[2]: the key's minute and day buckets (one hash tag, one slot).
-- ARGV[1], ARGV[2]: the per-minute and per-day limits.
-- ARGV[3]: "0" to use Redis's TIME, or a time in microseconds (tests only).
-- Each bucket is a hash: t = tokens (a float as %.17g), ts = when t was true
-- (microseconds), n = the limit it was kept under. A missing bucket is full.
-- Returns {"1" or "0", minute tokens after, day tokens after} as strings (Lua
-- numbers returned to Redis would be truncated to integers).
local now
if ARGV[3] ~= "0" then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- seconds converts microseconds as Go's Duration.Seconds does, so that the
-- arithmetic matches x/time/rate's to the last bit.
local function seconds(us)
  local whole = math.floor(us / 1000000)
  return whole + (us - whole * 1000000) / 1000000
end

-- tokens of a bucket of size at now: x/time/rate's advance. A changed limit
-- refills at the old rate up to now, then holds at most the new size.
-- The second result says whether the bucket must be written even if the
-- request is refused: its limit changed (MemoryStore restarts its clock then).
local function tokens(key, size, window)
  local v = redis.call('HMGET', key, 't', 'ts', 'n')
  local t, ts, n = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  if t == nil or ts == nil or n == nil then
    return size, false
  end
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  t = t + seconds(elapsed) * (n / window)
  if t >= n then
    -- Full at its old size: the same as a new bucket, full at the new size.
    return size, n ~= size
  end
  if t > size then t = size end
  return t, n ~= size
end

local pm, pd = tonumber(ARGV[1]), tonumber(ARGV[2])
local m, mChanged = tokens(KEYS[1], pm, 60)
local d, dChanged = tokens(KEYS[2], pd, 86400)
local allowed = m >= 1 and d >= 1
if allowed then
  m = m - 1
  d = d - 1
end

-- Write a bucket back, expiring when full again: a full bucket is a missing
-- one. A refused request changes nothing, as in MemoryStore, unless the
-- bucket's limit changed.
local function save(key, t, size, window)
  local ms = math.ceil((size - t) / (size / window) * 1000)
  if ms < 1 then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 't', string.format('%.17g', t), 'ts', string.format('%d', now), 'n', size)
  redis.call('PEXPIRE', key, ms + 1000)
end
if allowed or mChanged then save(KEYS[1], m, pm, 60) end
if allowed or dChanged then save(KEYS[2], d, pd, 86400) end

local flag = '0'
if allowed then flag = '1' end
return {flag, string.format('%.17g', m), string.format('%.17g', d)}
