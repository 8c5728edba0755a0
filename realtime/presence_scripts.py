"""The Lua scripts of `realtime.presence`: each runs atomically, so replicas agree on who is
online without locks.

Every script is given each key it touches: for the n-th room (or pair) its ARGV name after the
leading arguments, KEYS[2n - 1] is the expiries of its bucket and KEYS[2n] its room key. On a
cluster a call covers one bucket (one hash slot); on one Redis, a whole batch.

A bucket's expiries hold each of its rooms with leases, scored with the room's earliest lease
expiry; every script that changes a room's leases sets it again (`SETTLE`). The reaper thus
reads only the rooms whose leases ran out, not every room of the deployment every round.
"""

# Prepended to each script: KEYS[2n - 1]'s score of the room ARGV names, from KEYS[2n].
SETTLE = """
local function settle(expiries, key, room)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', expiries, first[2], room)
  else
    redis.call('ZREM', expiries, room)
  end
end
"""

RENEW = (
    SETTLE
    + """
local replica, expiry = ARGV[1], ARGV[2]
for n = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * n], expiry, ARGV[2 * n + 2] .. '|' .. replica)
  settle(KEYS[2 * n - 1], KEYS[2 * n], ARGV[2 * n + 1])
end
"""
)

# Removes the expired leases of the given rooms; returns room, user pairs whose last lease it
# removed, so exactly one reaper announces each departure.
REAP = (
    SETTLE
    + """
local now, gone = ARGV[1], {}
for n = 1, #KEYS / 2 do
  local key, room = KEYS[2 * n], ARGV[1 + n]
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    local live = {}
    for _, lease in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      live[string.match(lease, '^[^|]*')] = true
    end
    for _, lease in ipairs(expired) do
      local user = string.match(lease, '^[^|]*')
      if not live[user] then
        live[user] = true
        table.insert(gone, room)
        table.insert(gone, user)
      end
    end
  end
  settle(KEYS[2 * n - 1], key, room)
end
return gone
"""
)

# Records arrivals: for each room named, who holds live leases from other replicas before them
# (this replica's own are known where it runs), then a lease per (room, user) pair. One call for
# every arrival of a batch (one per bucket on a cluster): a storm of reconnecting clients costs
# a round trip per batch, not two per join; a room of 500 filling up on one replica is answered
# with no leases at all, not its 500 each time.
ARRIVE = (
    SETTLE
    + """
local replica, now, expiry = ARGV[1], ARGV[2], ARGV[3]
local mine = '|' .. replica
local answered, reply = {}, {}
for n = 1, #KEYS / 2 do
  local room = ARGV[2 * n + 2]
  if not answered[room] then
    answered[room] = true
    local users = {}
    for _, lease in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2 * n], now, '+inf')) do
      if string.sub(lease, -#mine) ~= mine then
        table.insert(users, string.match(lease, '^[^|]*'))
      end
    end
    table.insert(reply, room)
    table.insert(reply, users)
  end
end
for n = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * n], expiry, ARGV[2 * n + 3] .. '|' .. replica)
  settle(KEYS[2 * n - 1], KEYS[2 * n], ARGV[2 * n + 2])
end
return reply
"""
)

# Gives a lease back (KEYS[2], the room's key); 1 when the user (ARGV[2]) has no live lease
# left in the room. Reading the room's leases back instead cost a departing member's replica
# the whole room's leases, parsed, per departure: a room of 500 emptying parsed 125,000.
DEPART = (
    SETTLE
    + """
local key, lease, prefix, now = KEYS[2], ARGV[1], ARGV[2] .. '|', ARGV[3]
redis.call('ZREM', key, lease)
settle(KEYS[1], key, ARGV[4])
for _, other in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
  if string.sub(other, 1, #prefix) == prefix then
    return 0
  end
end
return 1
"""
)
