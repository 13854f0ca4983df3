//! Lua scripts of the Redis engine. Each is Gyre's own, written to behave as
//! the centrifuge library's script of the same purpose (redis-cluster.md §3:
//! same KEYS, ARGV and replies), so a stream written by either is read
//! correctly by both. Atomic by construction: a publication's offset and
//! its PUB/SUB announcement happen in one step, so offsets have no gaps.

/// Publish with history in a stream (§3.1). KEYS: stream, meta, result.
/// ARGV: publication, MAXLEN, stream TTL s, PUB/SUB channel ("" = none),
/// meta TTL s ("0" = none), candidate epoch, "publish", result TTL s ("" =
/// no idempotency key), delta ("1"/""), version ("0" = none), version epoch.
/// Returns {offset, epoch, from_cache, suppressed}.
pub(crate) const ADD_STREAM: &str = r#"
local stream, meta, result = KEYS[1], KEYS[2], KEYS[3]
if ARGV[8] ~= '' then
  local cached = redis.call('HMGET', result, 'e', 's')
  if cached[1] then
    return {cached[2] or '0', cached[1], '1', '0'}
  end
end
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', meta, 'e', epoch)
end
if ARGV[10] ~= '0' then
  local v = redis.call('HMGET', meta, 'v', 've', 's')
  if v[1] and (ARGV[11] == '' or ARGV[11] == v[2]) and tonumber(v[1]) >= tonumber(ARGV[10]) then
    return {v[3] or '0', epoch, '0', '1'}
  end
  redis.call('HSET', meta, 'v', ARGV[10], 've', ARGV[11])
end
local offset = redis.call('HINCRBY', meta, 's', 1)
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', meta, ARGV[5])
end
local prev = ''
if offset == 1 then
  -- A stream that outlived its meta key would clash with offset 1.
  redis.call('DEL', stream)
elseif ARGV[9] == '1' then
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if last[1] then prev = last[1][2][2] end
end
redis.call('XADD', stream, 'MAXLEN', ARGV[2], offset, 'd', ARGV[1])
redis.call('EXPIRE', stream, ARGV[3])
if ARGV[4] ~= '' then
  local frame
  if ARGV[9] == '1' then
    frame = '__d1:' .. offset .. ':' .. epoch .. ':' .. #prev .. ':' .. prev .. ':' .. #ARGV[1] .. ':' .. ARGV[1]
  else
    frame = '__p1:' .. offset .. ':' .. epoch .. '__' .. ARGV[1]
  end
  redis.call(ARGV[7], ARGV[4], frame)
end
if ARGV[8] ~= '' then
  redis.call('HSET', result, 'e', epoch, 's', offset)
  redis.call('EXPIRE', result, ARGV[8])
end
return {offset, epoch, '0', '0'}
"#;

/// Publish with history in a list (§3.2). Same KEYS and ARGV 1–9 as
/// [`ADD_STREAM`], except ARGV[2] = history size − 1 (the LTRIM bound).
/// List elements are whole `p1` frames, newest first.
pub(crate) const ADD_LIST: &str = r#"
local list, meta, result = KEYS[1], KEYS[2], KEYS[3]
if ARGV[8] ~= '' then
  local cached = redis.call('HMGET', result, 'e', 's')
  if cached[1] then
    return {cached[2] or '0', cached[1], '1'}
  end
end
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', meta, 'e', epoch)
end
local offset = redis.call('HINCRBY', meta, 's', 1)
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', meta, ARGV[5])
end
local frame = '__p1:' .. offset .. ':' .. epoch .. '__' .. ARGV[1]
redis.call('LPUSH', list, frame)
redis.call('LTRIM', list, 0, ARGV[2])
redis.call('EXPIRE', list, ARGV[3])
if ARGV[4] ~= '' then
  redis.call(ARGV[7], ARGV[4], frame)
end
if ARGV[8] ~= '' then
  redis.call('HSET', result, 'e', epoch, 's', offset)
  redis.call('EXPIRE', result, ARGV[8])
end
return {offset, epoch, '0'}
"#;

/// Publish without history under an idempotency key (§3.3). KEYS: result.
/// ARGV: publication, PUB/SUB channel, "publish", result TTL s. Returns 1
/// when published, 0 for a repeat.
pub(crate) const PUBLISH_IDEMPOTENT: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'e') == 1 then
  return 0
end
if ARGV[2] ~= '' then
  redis.call(ARGV[3], ARGV[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'e', '')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"#;

/// History read from a stream (§3.4). KEYS: stream, meta. ARGV: include
/// ("1"/"0"), start offset, limit ("0" = all), reverse ("1"/"0"), meta TTL
/// s, candidate epoch. A read of a stream without an epoch creates it.
/// Returns {top, epoch[, entries]}.
pub(crate) const HISTORY_STREAM: &str = r#"
local stream, meta = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'e', 's')
local epoch, top = m[1], m[2]
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', meta, 'e', epoch)
end
if not top then top = 0 end
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', meta, ARGV[5])
end
if ARGV[1] == '0' then
  return {top, epoch}
end
local entries
if ARGV[4] == '1' then
  local from = ARGV[2]
  if from == '0' then from = top end
  if ARGV[3] ~= '0' then
    entries = redis.call('XREVRANGE', stream, from, '-', 'COUNT', ARGV[3])
  else
    entries = redis.call('XREVRANGE', stream, from, '-')
  end
else
  if ARGV[3] ~= '0' then
    entries = redis.call('XRANGE', stream, ARGV[2], '+', 'COUNT', ARGV[3])
  else
    entries = redis.call('XRANGE', stream, ARGV[2], '+')
  end
end
return {top, epoch, entries}
"#;

/// History read from a list (§3.5). KEYS: list, meta. ARGV: include
/// ("1"/"0"), right bound ("-1"), meta TTL s, candidate epoch. Returns
/// {top, epoch[, frames newest first]}.
pub(crate) const HISTORY_LIST: &str = r#"
local list, meta = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'e', 's')
local epoch, top = m[1], m[2]
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', meta, 'e', epoch)
end
if not top then top = 0 end
if ARGV[3] ~= '0' then
  redis.call('EXPIRE', meta, ARGV[3])
end
if ARGV[1] == '0' then
  return {top, epoch}
end
return {top, epoch, redis.call('LRANGE', list, 0, ARGV[2])}
"#;

/// Presence add (§3.7, without user mapping or hash-field TTL). KEYS:
/// expire zset, data hash, user expire zset, user clients hash. ARGV: TTL
/// s, expire-at (Unix s), client id, ClientInfo bytes, user, "0", "0".
pub(crate) const PRESENCE_ADD: &str = r#"
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[1])
"#;

/// Presence removal (§3.7). KEYS as [`PRESENCE_ADD`]. ARGV: client id.
pub(crate) const PRESENCE_REM: &str = r#"
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
"#;

/// Presence read (§3.7): drops entries whose expire-at passed, then returns
/// the data hash as {client, info, client, info, ...}. KEYS: expire zset,
/// data hash. ARGV: now (Unix s).
pub(crate) const PRESENCE_GET: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1])
for _, c in ipairs(gone) do
  redis.call('HDEL', KEYS[2], c)
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"#;
