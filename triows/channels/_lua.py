"""The Lua scripts of the Redis backend (``_redis.py``): each runs in Redis as one step.

Keys and fields are described above each one. In Lua, the escape for character 31 (the unit
separator) parts a presence field's worker from its key.
"""

from __future__ import annotations

__all__ = ["PRESENCE_SET", "PRESENCE_STATE", "PRESENCE_SWEEP", "PUBLISH"]

# KEYS: the stream, its epoch, this publish's token (a retry after a lost reply finds it there
# and adds nothing twice). ARGV: the count kept, the body, an epoch if none, the channel.
PUBLISH = """
local done = redis.call('GET', KEYS[3])
if done then return done end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = ''
if #last > 0 then prev = epoch .. ':' .. last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'b', ARGV[2])
local full = epoch .. ':' .. id
redis.call('PUBLISH', ARGV[4], prev .. '\\n' .. full .. '\\n' .. ARGV[2])
redis.call('SET', KEYS[3], full, 'PX', 60000)
return full
"""

# KEYS[1]: the presence hash. ARGV: field, value ('' deletes), key, worker prefix, this
# worker, its liveness in ms (renewed: after a Redis restart, the first write revives it).
# Returns {whether our field existed, whether a live field of another worker has the key}.
PRESENCE_SET = """
redis.call('SET', ARGV[4] .. ARGV[5], '1', 'PX', ARGV[6])
local suffix = '\\31' .. ARGV[3]
local others = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if field ~= ARGV[1] and string.sub(field, -#suffix) == suffix then
    local worker = string.sub(field, 1, #field - #suffix)
    if redis.call('EXISTS', ARGV[4] .. worker) == 1 then others = 1 end
  end
end
local had = redis.call('HEXISTS', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return {had, others}
"""

# KEYS[1]: the presence hash. ARGV[1]: worker prefix. The live fields, flat: key, metas...
PRESENCE_STATE = """
local out = {}
local alive = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local field = flat[i]
  local at = string.find(field, '\\31', 1, true)
  local worker = string.sub(field, 1, at - 1)
  if alive[worker] == nil then alive[worker] = redis.call('EXISTS', ARGV[1] .. worker) end
  if alive[worker] == 1 then
    table.insert(out, string.sub(field, at + 1))
    table.insert(out, flat[i + 1])
  end
end
return out
"""

# KEYS[1]: the presence hash. ARGV[1]: worker prefix. Deletes the fields of dead workers and
# returns the keys that no live worker has any more.
PRESENCE_SWEEP = """
local alive = {}
local live_keys = {}
local dead = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local at = string.find(field, '\\31', 1, true)
  local worker = string.sub(field, 1, at - 1)
  local key = string.sub(field, at + 1)
  if alive[worker] == nil then alive[worker] = redis.call('EXISTS', ARGV[1] .. worker) end
  if alive[worker] == 1 then live_keys[key] = true else table.insert(dead, field) end
end
local gone = {}
for _, field in ipairs(dead) do
  redis.call('HDEL', KEYS[1], field)
  local key = string.sub(field, string.find(field, '\\31', 1, true) + 1)
  if not live_keys[key] then
    live_keys[key] = true
    table.insert(gone, key)
  end
end
return gone
"""
