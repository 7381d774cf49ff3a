-- take: rate-limit decisions of one key, and its owner, atomically and each
-- at most once. Each is gcra.Take (ratelimit/internal/gcra), step for step,
-- on the key's bucket and on the owner's, in the order of their ids, as if
-- each were a call of its own at the same moment; every number stays an
-- integer below 2^53, so Lua's doubles compute exactly what Go's int64s do.
-- KEYS[1]: the key's bucket, a hash: at (Unix ms of the last change), then
--   per window (m: minute, d: day) its debt's ms, frac and the limit l it is
--   counted in; per further window of period P (in ms) the fields Pms, Pfr
--   and Pl; p the list of those periods, "P1,P2" in order (missing: none); q
--   the ids of the last few allowed decisions. Missing is full.
-- KEYS[2], only with an owner: the owner's bucket, a hash of at, p and the
--   fields of its windows (further windows only), in the same Cluster slot.
-- ARGV[1], ARGV[2]: the per-minute and per-day limits (1 to 2^52).
-- ARGV[3]: "0" to use Redis's TIME, or a time in Unix ms (tests only).
-- ARGV[4]: the decisions' ids, 24 characters each, one after the other
--   (1 to IDS of them), each unique to its decision.
-- ARGV[5] (missing: 1): the cost, 1 to 2^20, of every decision, or one cost
--   per decision, comma-separated.
-- ARGV[6] (missing: 0): n, the key's further windows; then n pairs of
--   period (ms, 1000 to 31 days) and limit; then, with KEYS[2], the owner's
--   windows as pairs to the end.
-- Returns, per decision in order, {allowed (1 or 0), minute ms, minute frac,
-- day ms, day frac, now, then ms and frac of each further window of the key,
-- in ARGV's order, then with an owner its now and ms and frac of each of its
-- windows}, one after the other: the buckets as they stand after the
-- decision, which the caller turns into headers with gcra.Decide, and the
-- times they stand at (Unix ms, never before a bucket's at). A refusal
-- changes nothing; decisions that are all refused write nothing.
local now
if ARGV[3] ~= '0' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local pm, pd, ids = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local n = tonumber(ARGV[6]) or 0
local IDLEN, IDS = 24, 32
local costs = {}
for c in string.gmatch(ARGV[5] or '1', '[^,]+') do costs[#costs + 1] = tonumber(c) end

-- advance: Debt.advance. Pay back elapsed ms at the old limit, then keep the
-- time until full, rounded up to the ms, at the new one.
local function advance(ms, frac, old, new, elapsed)
  ms = ms - elapsed
  if ms < 0 or old == 0 then ms, frac = 0, 0 end
  if old ~= new then
    if frac > 0 then ms = ms + 1 end
    frac = 0
  end
  return ms, frac
end

-- charge: Debt.charge. A request adds cost*period/limit ms (as a whole part
-- and a remainder); the floor of a double quotient is corrected exactly
-- (cost*period < 2^52 and limit <= 2^52, so each product below is exact).
local function charge(ms, frac, limit, period, cost)
  local t = cost * period
  local whole = math.floor(t / limit)
  if whole * limit > t then whole = whole - 1 end
  if (whole + 1) * limit <= t then whole = whole + 1 end
  ms = ms + whole
  frac = frac + (t - whole * limit)
  if frac >= limit then
    frac = frac - limit
    ms = ms + 1
  end
  return ms, frac, ms < period or (ms == period and frac == 0)
end

-- The further windows of a bucket: w[i] = {period, limit, ms, frac} (and,
-- while a decision is charged, its ms and frac after it), read
-- from the hash's fields at the limits and periods of ARGV from index first,
-- count of them, and advanced to now; with pair, the hash's fields of the
-- minute and the day and q are read too (v[3] to v[9]). Returns w, the
-- bucket's now, the periods as p lists them, the old p, the fields read and
-- the time since the bucket's at.
local function further(key, first, count, pair)
  local w, ps, v = nil, nil, nil
  if count == 0 and pair then
    -- The seed's pair alone: one HMGET of fixed fields, the hot path.
    v = redis.call('HMGET', key, 'at', 'p', 'mms', 'mfr', 'ml', 'dms', 'dfr', 'dl', 'q')
  else
    w, ps = {}, {}
    local fields = {'at', 'p'}
    if pair then
      fields = {'at', 'p', 'mms', 'mfr', 'ml', 'dms', 'dfr', 'dl', 'q'}
    end
    for i = 1, count do
      local per = ARGV[first + 2 * i - 2]
      ps[i] = per
      w[i] = {tonumber(per), tonumber(ARGV[first + 2 * i - 1])}
      fields[#fields + 1] = per .. 'ms'
      fields[#fields + 1] = per .. 'fr'
      fields[#fields + 1] = per .. 'l'
    end
    v = redis.call('HMGET', key, unpack(fields))
  end
  local at = tonumber(v[1]) or 0
  local bnow = now
  if bnow < at then bnow = at end -- the bucket's clock never goes back
  local elapsed = bnow - at
  local base = 2
  if pair then base = 9 end
  for i = 1, count do
    local j = base + 3 * i - 3
    w[i][3], w[i][4] = advance(tonumber(v[j + 1]) or 0, tonumber(v[j + 2]) or 0, tonumber(v[j + 3]) or 0, w[i][2], elapsed)
  end
  local p = ''
  if count > 0 then p = table.concat(ps, ',') end
  return w, bnow, p, v[2] or '', v, elapsed
end

local function int(x) return string.format('%d', x) end

-- fields appends to args the HSET fields of the further windows w as they
-- stand and their list p, and returns the time until they are all full, in ms,
-- rounded up. (The caller deletes a hash whose periods were others first: a
-- window dropped from the limits starts full if it comes back, as in
-- gcra.Peek.)
local function fields(w, p, args)
  local full = 0
  if p ~= '' then
    args[#args + 1] = 'p'
    args[#args + 1] = p
  end
  for i = 1, #w do
    local per = int(w[i][1])
    args[#args + 1] = per .. 'ms'
    args[#args + 1] = int(w[i][3])
    args[#args + 1] = per .. 'fr'
    args[#args + 1] = int(w[i][4])
    args[#args + 1] = per .. 'l'
    args[#args + 1] = int(w[i][2])
    full = math.max(full, w[i][3] + 1)
  end
  return full
end

-- The key's bucket.
local w, know, kp, oldp, v, elapsed = further(KEYS[1], 7, n, true)
local mms, mfr = advance(tonumber(v[3]) or 0, tonumber(v[4]) or 0, tonumber(v[5]) or 0, pm, elapsed)
local dms, dfr = advance(tonumber(v[6]) or 0, tonumber(v[7]) or 0, tonumber(v[8]) or 0, pd, elapsed)
local q = v[9] or ''

-- The owner's.
local ow, onow, op, oldop
if KEYS[2] then
  local first = 7 + 2 * n
  ow, onow, op, oldop = further(KEYS[2], first, (#ARGV - first + 1) / 2, false)
end

-- reply appends a decision's answer to out: allowed, and the buckets as
-- they stand.
local function reply(out, allowed)
  out[#out + 1] = allowed
  out[#out + 1] = mms
  out[#out + 1] = mfr
  out[#out + 1] = dms
  out[#out + 1] = dfr
  out[#out + 1] = know
  for i = 1, n do
    out[#out + 1] = w[i][3]
    out[#out + 1] = w[i][4]
  end
  if ow then
    out[#out + 1] = onow
    for i = 1, #ow do
      out[#out + 1] = ow[i][3]
      out[#out + 1] = ow[i][4]
    end
  end
end

-- seen says id is among the ids q keeps, at a place an id starts.
local function seen(id)
  local from = 1
  while true do
    local i = string.find(q, id, from, true)
    if not i then return false end
    if (i - 1) % IDLEN == 0 then return true end
    from = i + 1
  end
end

local out, allowed = {}, false
for j = 1, #ids / IDLEN do
  local id = string.sub(ids, (j - 1) * IDLEN + 1, j * IDLEN)
  local cost = costs[j] or costs[1]
  if seen(id) then
    -- A decision already allowed (go-redis running the script again after
    -- a lost reply) is answered as allowed again, and charged nothing.
    reply(out, 1)
  else
    -- Every window of both buckets must have room: all or nothing.
    local m2, f2, okm = charge(mms, mfr, pm, 60000, cost)
    local d2, g2, okd = charge(dms, dfr, pd, 86400000, cost)
    local ok = okm and okd
    for i = 1, n do
      local okw
      w[i][5], w[i][6], okw = charge(w[i][3], w[i][4], w[i][2], w[i][1], cost)
      ok = ok and okw
    end
    if ow then
      for i = 1, #ow do
        local okw
        ow[i][5], ow[i][6], okw = charge(ow[i][3], ow[i][4], ow[i][2], ow[i][1], cost)
        ok = ok and okw
      end
    end
    if ok then
      mms, mfr, dms, dfr = m2, f2, d2, g2
      for i = 1, n do w[i][3], w[i][4] = w[i][5], w[i][6] end
      if ow then
        for i = 1, #ow do ow[i][3], ow[i][4] = ow[i][5], ow[i][6] end
      end
      q = string.sub(id .. q, 1, IDS * IDLEN)
      allowed = true
    end
    reply(out, ok and 1 or 0)
  end
end
if not allowed then return out end

if kp ~= oldp then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'at', int(know), 'mms', int(mms), 'mfr', int(mfr), 'ml', int(pm),
  'dms', int(dms), 'dfr', int(dfr), 'dl', int(pd), 'q', q)
-- Expire when every window is full again (a full bucket is a missing one),
-- and never sooner than a second, so that a retried decision finds its id.
local full = math.max(mms + 1, dms + 1)
if n > 0 then
  local args = {}
  full = math.max(full, fields(w, kp, args))
  redis.call('HSET', KEYS[1], unpack(args))
end
redis.call('PEXPIRE', KEYS[1], full + 1000)
if ow then
  if op ~= oldop then redis.call('DEL', KEYS[2]) end
  local args = {'at', int(onow)}
  local ofull = fields(ow, op, args)
  redis.call('HSET', KEYS[2], unpack(args))
  redis.call('PEXPIRE', KEYS[2], ofull + 1000)
end
return out
