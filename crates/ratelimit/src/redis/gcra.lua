-- flowbed-ratelimit: GCRA on Redis, one key per limited thing, one call per check.
--
-- KEYS[1]  the key's theoretical arrival time (TAT), in nanoseconds, as a decimal string
-- ARGV[1]  cost: n cells x the replenish interval, in nanoseconds
-- ARGV[2]  tolerance tau: burst x the replenish interval, in nanoseconds (saturated)
-- ARGV[3]  now in nanoseconds, or '' to read the server's clock (TIME)
-- ARGV[4]  milliseconds added to every key's expiry
--
-- Returns {allowed (1/0), headroom, reset_after, retry_after}: nanoseconds, as decimal
-- strings. Exactly the arithmetic of the crate's local GcraCell::check, on unsigned 64-bit
-- integers that saturate.
--
-- Lua numbers are doubles, exact only up to 2^53, and nanoseconds since 1970 are about
-- 2^60: every time is held as two exact parts, {seconds, nanoseconds below 10^9}.

if redis.replicate_commands then
  redis.replicate_commands() -- Redis < 5: allow writes after TIME (7 does this always)
end

local BILLION = 1000000000
local ZERO = {0, 0}
local U64_MAX = {18446744073, 709551615}
local TIME_MASK = {9223372036, 854775807} -- 2^63 - 1: the local limiter's time bits

local function parse(text)
  local len = string.len(text)
  if len <= 9 then
    return {0, tonumber(text)}
  end
  return {tonumber(string.sub(text, 1, len - 9)), tonumber(string.sub(text, len - 8))}
end

local function format(value)
  if value[1] == 0 then
    return string.format('%d', value[2])
  end
  return string.format('%d%09d', value[1], value[2])
end

local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local function max(a, b)
  if less(a, b) then return b end
  return a
end

local function min(a, b)
  if less(a, b) then return a end
  return b
end

local function saturating_add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= BILLION then
    hi, lo = hi + 1, lo - BILLION
  end
  return min({hi, lo}, U64_MAX)
end

local function saturating_sub(a, b)
  if less(a, b) then return ZERO end
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then
    hi, lo = hi - 1, lo + BILLION
  end
  return {hi, lo}
end

local now
if ARGV[3] == '' then
  local time = redis.call('TIME')
  now = {tonumber(time[1]), tonumber(time[2]) * 1000}
else
  now = parse(ARGV[3])
end
local cost = parse(ARGV[1])
local tolerance = parse(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = ZERO
if stored then
  tat = parse(stored)
end

local horizon = saturating_add(now, tolerance)
local start = max(tat, now)
local new_tat = saturating_add(start, cost)
if less(horizon, new_tat) then
  -- Denied: nothing is written.
  return {0, format(saturating_sub(horizon, start)), format(saturating_sub(tat, now)),
    format(saturating_sub(new_tat, horizon))}
end

local busy_for = saturating_sub(new_tat, now)
if busy_for[1] == 0 and busy_for[2] == 0 then
  -- Nothing spent and fully replenished: an idle key is an absent key.
  redis.call('DEL', KEYS[1])
else
  -- The key expires once fully replenished (rounded up to a millisecond), so idle keys
  -- take no memory; forgetting a TAT in the past loses nothing.
  local ttl = busy_for[1] * 1000 + math.ceil(busy_for[2] / 1000000) + tonumber(ARGV[4])
  redis.call('SET', KEYS[1], format(min(new_tat, TIME_MASK)), 'PX', ttl)
end
return {1, format(saturating_sub(horizon, new_tat)), format(busy_for), '0'}
