"""The Lua scripts of the Redis hot index (``binding_store.redis_index``), each one atomic.

They read keys they derive themselves (the look-up) or are handed: fine on a standalone or a
replicated Redis, not on Redis Cluster. Lifetimes are always durations (``PX``/``EX``) computed
by the caller from its own clock.
"""

from __future__ import annotations

# One round trip for the call path: both binding keys, the shop/caller states they name, and
# the index's watermark. KEYS: ax, bx, watermark. ARGV: prefix.
LOOKUP = """
local out = {false, false, false, false, false, false, false}
out[7] = redis.call('GET', KEYS[3])
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    out[i] = v
    local d = cjson.decode(v)
    out[1 + 2 * i] = redis.call('GET', ARGV[1] .. ':shop:' .. d['shop'])
    out[2 + 2 * i] = redis.call('GET', ARGV[1] .. ':caller:' .. d['shop'] .. ':' .. d['a'])
  end
end
return out
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

# A binding ends: delete its keys where they still hold it (a newer binding may own them),
# leave a tombstone for the rest of its validity, and (after the SQL commit) raise the
# index's watermark, only if the index has one: a flushed index stays visibly lost.
# KEYS: ax, bx, tombstone, watermark. ARGV: binding id, tombstone lifetime ms, watermark or 0.
FORGET = """
local n = 0
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v and cjson.decode(v)['id'] == ARGV[1] then n = n + redis.call('DEL', KEYS[i]) end
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
local to = tonumber(ARGV[3])
if to > 0 then
  local cur = redis.call('GET', KEYS[4])
  if cur and tonumber(cur) < to then redis.call('SET', KEYS[4], ARGV[3]) end
end
return n
"""

# Shop/caller states, each carrying the watermark it is true at ("v"): a state never replaces
# one true at a later watermark (unless forced), so a slow seed cannot undo a newer change.
# KEYS: watermark, state keys... ARGV: lifetime s, watermark to raise to or 0, force 0/1,
# version, values...
STATES = """
local version = tonumber(ARGV[4])
local written = 0
for i = 2, #KEYS do
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
    redis.call('SET', KEYS[i], ARGV[i + 3], 'EX', ARGV[1])
    written = written + 1
  end
end
local to = tonumber(ARGV[2])
if to > 0 then
  local cur = redis.call('GET', KEYS[1])
  if cur and tonumber(cur) < to then redis.call('SET', KEYS[1], ARGV[2]) end
end
return written
"""

# A rebuild's last step: set the watermark it is true at, provided Redis kept everything the
# rebuild wrote (its token is still there: no flush or restore happened in between).
# KEYS: watermark, token. ARGV: watermark, token, force 0/1. -1: the token is gone.
FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if ARGV[3] == '1' or cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return cur
"""
