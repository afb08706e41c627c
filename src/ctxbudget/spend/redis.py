"""The spend ledger in Redis: reserve and settle are Lua scripts, atomic on the server.

Each bucket is a hash (``spent_nanos``, ``reserved_nanos``, ``spent_tokens``,
``reserved_tokens``, ``calls``). The reserve script reads the buckets the call's limits
apply to, tests every limit and, only if none blocks, adds the reservation to every bucket
the call counts in, all in one step the server runs alone: no other worker's reservation
can slip between the check and the write. Which limits apply is decided in Python (the
same :func:`~ctxbudget.spend.ledger.plan` as SQL); the script only does arithmetic.

A reservation's hash holds its ``expires`` time, and a sorted set lists the open ones by
it. Before a reserve, the expired candidates are read from the set (with their buckets, so
the script declares every key it touches); the reserve script releases each one still
``reserved`` and expired, then checks and reserves, in the same atomic step. A refused
call keeps the sweep (a script has no rollback; the sweep is right on its own).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

from ctxbudget.errors import UsageError
from ctxbudget.spend.ledger import (
    MAX_SWEEP,
    RESERVATION_TTL,
    Bucket,
    Crossing,
    Reservation,
    SpendLedger,
    Switch,
    Totals,
    plan,
    refusal,
)
from ctxbudget.spend.model import Limit, Tags, from_nanos
from ctxbudget.store.redis import RedisStore

__all__ = ["RedisLedger"]

_SWEEP = """
-- (0 - x, not -x: Lua's -0 reaches Redis as "-0", which HINCRBY refuses)
local function sweep(first_key, first_arg, m, now, zset, wall)
  local pos = first_key + m
  local released = 0
  for j = 0, m - 1 do
    local rkey = KEYS[first_key + j]
    local k = tonumber(ARGV[first_arg + 2 * j + 1])
    local v = redis.call('HMGET', rkey, 'state', 'expires', 'nanos', 'tokens')
    local expires = tonumber(v[2])
    local due = expires ~= nil and expires <= now
    if v[1] == 'reserved' and due then
      for q = 0, k - 1 do
        redis.call('HINCRBY', KEYS[pos + q], 'reserved_nanos', 0 - tonumber(v[3]))
        redis.call('HINCRBY', KEYS[pos + q], 'reserved_tokens', 0 - tonumber(v[4]))
      end
      redis.call('HSET', rkey, 'state', 'expired', 'settled', wall)
      released = released + 1
    end
    if v[1] ~= 'reserved' or due then
      redis.call('ZREM', zset, ARGV[first_arg + 2 * j])
    end
    pos = pos + k
  end
  return released
end
"""
"""Release the expired reservations among the candidates passed: KEYS from ``first_key``:
their hashes, then their buckets' keys; ARGV from ``first_arg``: (id, bucket count) per
candidate. Each is checked again here (still ``reserved``, expired at ``now``)."""

_RESERVE = (
    _SWEEP
    + """
local nanos = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local checks = tonumber(ARGV[3])
local buckets = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local m = tonumber(ARGV[7])
local first = 8 + checks * 4
local zset = KEYS[buckets + 3]
sweep(buckets + 4, first + buckets + 4, m, now, zset, ARGV[first + buckets + 1])
local out = {1}
local block = false
for i = 0, checks - 1 do
  local base = 8 + i * 4
  local b = tonumber(ARGV[base])
  local ucap = tonumber(ARGV[base + 1])
  local tcap = tonumber(ARGV[base + 2])
  local sn, rn, st, rt = 0, 0, 0, 0
  if b > 0 then
    local v = redis.call('HMGET', KEYS[b], 'spent_nanos', 'reserved_nanos', 'spent_tokens',
                         'reserved_tokens')
    sn, rn = tonumber(v[1]) or 0, tonumber(v[2]) or 0
    st, rt = tonumber(v[3]) or 0, tonumber(v[4]) or 0
  end
  if ucap >= 0 and sn + rn + nanos > ucap then
    table.insert(out, i); table.insert(out, 0); table.insert(out, sn); table.insert(out, rn)
    if ARGV[base + 3] == '1' then block = true end
  end
  if tcap >= 0 and st + rt + tokens > tcap then
    table.insert(out, i); table.insert(out, 1); table.insert(out, st); table.insert(out, rt)
    if ARGV[base + 3] == '1' then block = true end
  end
end
if block then
  out[1] = 0
  return out
end
for b = 1, buckets do
  redis.call('HINCRBY', KEYS[b], 'reserved_nanos', nanos)
  redis.call('HINCRBY', KEYS[b], 'reserved_tokens', tokens)
  redis.call('SADD', KEYS[buckets + 1], ARGV[first + b - 1])
end
redis.call('HSET', KEYS[buckets + 2], 'state', 'reserved', 'nanos', nanos, 'tokens', tokens,
           'model', ARGV[first + buckets], 'created', ARGV[first + buckets + 1],
           'buckets', ARGV[first + buckets + 2], 'expires', ARGV[6])
redis.call('ZADD', zset, ARGV[6], ARGV[first + buckets + 3])
return out
"""
)

_EXPIRE = (
    _SWEEP
    + """
return sweep(2, 3, tonumber(ARGV[1]), tonumber(ARGV[2]), KEYS[1], ARGV[3 + 2 * tonumber(ARGV[1])])
"""
)

_CLOSE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, ''} end
if state ~= 'reserved' and state ~= 'expired' then return {-2, state} end
local held = state == 'reserved'  -- an expired one gave its reservation back already
local nanos = tonumber(redis.call('HGET', KEYS[1], 'nanos'))
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
for b = 3, #KEYS do
  if held then
    redis.call('HINCRBY', KEYS[b], 'reserved_nanos', 0 - nanos)
    redis.call('HINCRBY', KEYS[b], 'reserved_tokens', 0 - tokens)
  end
  if ARGV[1] == 'settled' then
    redis.call('HINCRBY', KEYS[b], 'spent_nanos', ARGV[2])
    redis.call('HINCRBY', KEYS[b], 'spent_tokens', ARGV[3])
    redis.call('HINCRBY', KEYS[b], 'calls', 1)
  end
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'billed_nanos', ARGV[2], 'billed_tokens', ARGV[3],
           'settled', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[5])
return {1, ARGV[1]}
"""


class RedisLedger(SpendLedger):
    """Spend limits and tallies under a Redis store's key prefix."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        client = store.client
        self._reserve = client.register_script(_RESERVE)
        self._expire = client.register_script(_EXPIRE)
        self._closing = client.register_script(_CLOSE)
        self._expiring = store.key("spend", "expiring")
        """Sorted set: reservations not settled nor released yet, by expiry time."""

    def _bucket_key(self, bucket: Bucket) -> str:
        return self.store.key("spend", "b", bucket.id)

    def _reservation_key(self, reservation_id: str) -> str:
        return self.store.key("spend", "r", reservation_id)

    def set_limit(self, limit: Limit) -> None:
        value = {
            "usd_nanos": limit.usd_nanos,
            "tokens": limit.tokens,
            "action": limit.action,
            "fallback_model": limit.fallback_model,
        }
        with self.store.translated("write"):
            self.store.client.hset(
                self.store.key("spend", "limits"),
                f"{limit.scope}|{limit.key}|{limit.period}",
                json.dumps(value, sort_keys=True),
            )

    def remove_limit(self, scope: str, key: str, period: str) -> bool:
        with self.store.translated("write"):
            removed = self.store.client.hdel(
                self.store.key("spend", "limits"), f"{scope}|{key}|{period}"
            )
        return bool(removed)

    def limits(self) -> list[Limit]:
        with self.store.translated("read"):
            raw = cast(dict[str, str], self.store.client.hgetall(self.store.key("spend", "limits")))
        found = []
        for name, text in raw.items():
            scope, key, period = name.split("|", 2)
            value = json.loads(text)
            usd = value["usd_nanos"]
            found.append(
                Limit(
                    scope=cast(Any, scope),
                    key=key,
                    period=cast(Any, period),
                    usd=None if usd is None else from_nanos(int(usd)),
                    tokens=value["tokens"],
                    action=value["action"],
                    fallback_model=value["fallback_model"],
                )
            )
        return sorted(found, key=lambda x: (x.scope, x.key, x.period))

    def reserve(
        self,
        tags: Tags,
        *,
        nanos: int,
        tokens: int,
        model: str,
        now: float,
        ttl: float = RESERVATION_TTL,
    ) -> Reservation | Switch:
        buckets, checks = plan(tags, self.limits(), now)
        index = {b: n + 1 for n, b in enumerate(buckets)}
        swept_keys, swept_args = self._candidates(now)
        args: list[Any] = [nanos, tokens, len(checks), len(buckets), repr(now)]
        args += [repr(now + ttl), len(swept_args) // 2]
        for check in checks:
            args += [
                index[check.bucket] if check.bucket is not None else 0,
                -1 if check.limit.usd_nanos is None else check.limit.usd_nanos,
                -1 if check.limit.tokens is None else check.limit.tokens,
                0 if check.limit.action == "warn" else 1,
            ]
        reservation_id = uuid.uuid4().hex
        args += [b.id for b in buckets]
        args += [model, repr(time.time()), json.dumps([b.id for b in buckets]), reservation_id]
        args += swept_args
        keys = [self._bucket_key(b) for b in buckets]
        keys += [self.store.key("spend", "buckets"), self._reservation_key(reservation_id)]
        keys += [self._expiring, *swept_keys]
        with self.store.translated("reserve"):
            out = [int(x) for x in self._reserve(keys=keys, args=args)]
        found = []
        for at in range(1, len(out), 4):
            number, unit, used, reserved = out[at : at + 4]
            limit = checks[number].limit
            found.append(
                Crossing(
                    limit=limit,
                    unit="usd" if unit == 0 else "tokens",
                    cap=cast(int, limit.usd_nanos if unit == 0 else limit.tokens),
                    used=used,
                    reserved=reserved,
                    requested=nanos if unit == 0 else tokens,
                )
            )
        if out[0] == 0:
            stop = refusal(found, checks)
            if isinstance(stop, Switch):
                return stop
            if stop is not None:
                raise stop
        return Reservation(
            id=reservation_id,
            nanos=nanos,
            tokens=tokens,
            model=model,
            buckets=tuple(buckets),
            warnings=tuple(found),
            expires=now + ttl,
        )

    def expire(self, now: float) -> int:
        keys, args = self._candidates(now)
        with self.store.translated("expire"):
            released = self._expire(
                keys=[self._expiring, *keys],
                args=[len(args) // 2, repr(now), *args, repr(time.time())],
            )
        return int(released)

    def _candidates(self, now: float) -> tuple[list[str], list[Any]]:
        """Reservations expired at ``now`` by the sorted set (at most :data:`MAX_SWEEP`),
        for a script that checks each again: their hash keys then their buckets' keys,
        and (id, bucket count) each."""
        with self.store.translated("read"):
            ids = cast(
                list[str],
                self.store.client.zrangebyscore(self._expiring, "-inf", now, 0, MAX_SWEEP),
            )
            pipe = self.store.client.pipeline(transaction=False)
            for reservation_id in ids:
                pipe.hget(self._reservation_key(reservation_id), "buckets")
            listed = pipe.execute() if ids else []
        keys = [self._reservation_key(r) for r in ids]
        args: list[Any] = []
        for reservation_id, text in zip(ids, listed, strict=True):
            held = [Bucket.from_id(b) for b in json.loads(text)] if text else []
            keys += [self._bucket_key(b) for b in held]
            args += [reservation_id, len(held)]
        return keys, args

    def settle(self, reservation_id: str, *, nanos: int, tokens: int) -> None:
        self._close(reservation_id, "settled", nanos, tokens)

    def release(self, reservation_id: str) -> None:
        self._close(reservation_id, "released", 0, 0)

    def _close(self, reservation_id: str, state: str, nanos: int, tokens: int) -> None:
        key = self._reservation_key(reservation_id)
        with self.store.translated("read"):
            listed = cast(str | None, self.store.client.hget(key, "buckets"))
        buckets = [Bucket.from_id(b) for b in json.loads(listed)] if listed else []
        keys = [key, self._expiring, *(self._bucket_key(b) for b in buckets)]
        args = [state, nanos, tokens, repr(time.time()), reservation_id]
        with self.store.translated("settle"):
            status, was = self._closing(keys=keys, args=args)
        if int(status) == -1:
            raise UsageError(f"no spend reservation {reservation_id!r} in {self.store.url}")
        if int(status) == -2:
            raise UsageError(
                f"spend reservation {reservation_id!r} is already {was}; settle or release "
                "each reservation once"
            )

    def totals(self) -> dict[Bucket, Totals]:
        with self.store.translated("read"):
            ids = sorted(
                cast(set[str], self.store.client.smembers(self.store.key("spend", "buckets")))
            )
            pipe = self.store.client.pipeline(transaction=False)
            for text in ids:
                pipe.hgetall(self._bucket_key(Bucket.from_id(text)))
            rows = pipe.execute()
        result = {}
        for text, row in zip(ids, rows, strict=True):
            result[Bucket.from_id(text)] = Totals(
                spent_nanos=int(row.get("spent_nanos", 0)),
                reserved_nanos=int(row.get("reserved_nanos", 0)),
                spent_tokens=int(row.get("spent_tokens", 0)),
                reserved_tokens=int(row.get("reserved_tokens", 0)),
                calls=int(row.get("calls", 0)),
            )
        return result
