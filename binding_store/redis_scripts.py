"""The Lua scripts of the Redis hot index (``binding_store.redis_index``), each one atomic.

They read keys they are handed, and the look-up also keys it derives; every key of the index
carries one hash tag (``binding_store.redis_index``), so each script touches one slot: fine on
a standalone, a replicated or a clustered Redis. Lifetimes are always durations
(``PX``/``EX``) computed by the caller from its own clock.
"""

from __future__ import annotations

# One round trip for the call path: both binding keys, the shop/caller states they name, the
# index's watermark and whether X is in the pool. KEYS: ax, bx, watermark, pool.
# ARGV: key base, X. The state keys are derived here; they share the index's hash tag, so
# the script stays on one slot of a Redis Cluster.
LOOKUP = """
local out = {false, false, false, false, false, false, false, 0}
out[7] = redis.call('GET', KEYS[3])
out[8] = redis.call('SISMEMBER', KEYS[4], ARGV[2])
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    out[i] = v
    local ok, d = pcall(cjson.decode, v)
    if ok and type(d) == 'table' and type(d['shop']) == 'string' and type(d['a']) == 'string'
        and not d['end'] then
      out[1 + 2 * i] = redis.call('GET', ARGV[1] .. ':shop:' .. d['shop'])
      out[2 + 2 * i] = redis.call('GET', ARGV[1] .. ':caller:' .. d['shop'] .. ':' .. d['a'])
    end
  end
end
return out
"""

# Pool numbers join the pool's set. KEYS: pool. ARGV: numbers.
POOL_ADD = """
return redis.call('SADD', KEYS[1], unpack(ARGV))
"""

# Ended bindings become markers (a reject can still say "expired") where their keys are free
# or still hold them (e.g. as live, restored from an old snapshot); a marker never replaces
# another binding. KEYS: (ax, bx) per binding. ARGV: (binding id, value, lifetime ms).
PUT_ENDED = """
local n = 0
for i = 1, #ARGV / 3 do
  for k = 2 * i - 1, 2 * i do
    local cur = redis.call('GET', KEYS[k])
    local mine = not cur
    if cur then
      local ok, d = pcall(cjson.decode, cur)
      mine = (not ok) or type(d) ~= 'table' or d['id'] == ARGV[3 * i - 2]
    end
    if mine then
      redis.call('SET', KEYS[k], ARGV[3 * i - 1], 'PX', ARGV[3 * i])
      n = n + 1
    end
  end
end
return n
"""

# Write bindings unless they have ended meanwhile (their tombstone exists): a put that comes
# late (an issue's, a rebuild's, a seed's) never brings back a released binding.
# KEYS: (ax, bx, tombstone) per binding. ARGV: (value, lifetime ms) per binding.
PUT = """
local n = 0
for i = 1, #ARGV / 2 do
  if redis.call('EXISTS', KEYS[3 * i]) == 0 then
    redis.call('SET', KEYS[3 * i - 2], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
    redis.call('SET', KEYS[3 * i - 1], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
    n = n + 1
  end
end
return n
"""

# A committed change with watermark V reports itself: V joins the set of applied changes and
# the index's watermark advances over every change applied without a gap. Gaps are real:
# a change applied to data Redis has since lost (restart from an old snapshot, failover to a
# lagging replica) never reports again, so such an index stays behind until it is rebuilt,
# however many later changes arrive. Without a watermark (never built, flushed) the index
# stays lost; the rebuild's watermark then advances over what was applied meanwhile.
# Uses: KEYS[watermark], KEYS[applied]; V in `to`.
_APPLIED = """
local function advance(mark_key, applied_key, to)
  local cur = tonumber(redis.call('GET', mark_key) or '')
  if to <= 0 or (cur and cur >= to) then return end
  redis.call('ZADD', applied_key, to, to)
  redis.call('PEXPIRE', applied_key, 86400000)
  if not cur then return end
  local w = cur
  while redis.call('ZSCORE', applied_key, w + 1) do w = w + 1 end
  redis.call('ZREMRANGEBYSCORE', applied_key, '-inf', w)
  if w > cur then redis.call('SET', mark_key, w) end
end
"""

# A binding ends. Before the SQL commit (watermark 0) its keys are marked held: the call path
# reads SQL for them, whatever the commit's fate. After it, they become ended markers (a
# reject says "expired") for the rest of their lifetime, and the change is reported. Either
# way only where the keys still hold this binding (a newer one may own them), and with a
# tombstone for the rest of its validity. KEYS: ax, bx, tombstone, watermark, applied.
# ARGV: binding id, tombstone lifetime ms, watermark or 0.
FORGET = _APPLIED + """
local n = 0
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    local ok, d = pcall(cjson.decode, v)
    if ok and type(d) == 'table' and d['id'] == ARGV[1] then
      if ARGV[3] == '0' then
        d['held'] = 1
      else
        d['held'] = nil
        d['end'] = 1
      end
      redis.call('SET', KEYS[i], cjson.encode(d), 'KEEPTTL')
      n = n + 1
    end
  end
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
advance(KEYS[4], KEYS[5], tonumber(ARGV[3]))
return n
"""

# Shop/caller states, each carrying the watermark it is true at ("v"): a state never replaces
# one true at a later watermark (unless forced), so a slow seed cannot undo a newer change;
# after a SQL commit, the change is reported as above.
# KEYS: watermark, applied, state keys... ARGV: lifetime s, watermark to report or 0,
# force 0/1, version, values...
STATES = _APPLIED + """
local version = tonumber(ARGV[4])
local written = 0
for i = 3, #KEYS do
  local keep = false
  if ARGV[3] ~= '1' then
    local cur = redis.call('GET', KEYS[i])
    if cur then
      local ok, d = pcall(cjson.decode, cur)
      if ok and type(d) == 'table' and tonumber(d['v']) and tonumber(d['v']) > version then
        keep = true
      end
    end
  end
  if not keep then
    redis.call('SET', KEYS[i], ARGV[i + 2], 'EX', ARGV[1])
    written = written + 1
  end
end
advance(KEYS[1], KEYS[2], tonumber(ARGV[2]))
return written
"""

# A rebuild's last step: set the watermark it is true at (never lower, unless forced), then
# advance over the changes applied since; only if Redis kept the rebuild's token, i.e. lost
# nothing in between (no flush or restore). KEYS: watermark, applied, token.
# ARGV: watermark, token, force 0/1. Returns the watermark now set, -1 if the token is gone.
FINISH = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[3])
local w = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '') or -1
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
elseif cur > w then
  w = cur
end
while redis.call('ZSCORE', KEYS[2], w + 1) do w = w + 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', w)
redis.call('SET', KEYS[1], w)
return w
"""
