#!/usr/bin/python3
"""Memcached peer for httpsession's interop tests (run with /usr/bin/python3).

aiohttp_session's MemcachedStorage talks to Memcached through aiomcache, which
Debian does not package. This module stands in for it with pymemcache
(python3-pymemcache), speaking the same text protocol with the same rules:

* ``Client`` is an aiomcache-compatible client (``await get(key)``, ``await
  set(key, value, exptime=0)``) that aiohttp_app.py installs as
  ``sys.modules["aiomcache"]``, so the real MemcachedStorage code runs
  unchanged against a real Memcached. Like aiomcache it rejects keys that are
  empty, longer than 250 bytes or contain whitespace or control characters,
  stores with flags 0, and fails on items whose flags are not 0 ("received
  flags without handler"), which is what a Python service would answer 500
  for.

* As a command, it reads what Go wrote and writes what Go reads:

      memcached_peer.py ADDR get KEY
          prints {"found": bool, "flags": int, "value": str, "session": {...}}
          where "session" is how aiohttp_session's Session sees the value
          (new, created, data), decoded exactly as MemcachedStorage does.
      memcached_peer.py ADDR set KEY JSON EXPTIME
          stores JSON under KEY with flags 0, as MemcachedStorage.save_session
          does (``set KEY 0 EXPTIME N``).
"""

import json
import sys

sys.dont_write_bytecode = True

from pymemcache.client.base import Client as _PymemcacheClient  # noqa: E402


class ClientException(Exception):
    """aiomcache.exceptions.ClientException."""


class ValidationException(ClientException):
    """aiomcache.exceptions.ValidationException."""


def _check_key(key):
    if not isinstance(key, bytes):
        raise ValidationException("key must be bytes", key)
    if not 1 <= len(key) <= 250:
        raise ValidationException("invalid key length", key)
    if any(c <= 0x20 or c == 0x7F for c in key):
        raise ValidationException("key has whitespace or control characters", key)


class _FlagsSerde:
    """Stores bytes with flags 0 and keeps the flags an item came back with."""

    def serialize(self, key, value):
        if not isinstance(value, bytes):
            raise ValidationException("value must be bytes", value)
        return value, 0

    def deserialize(self, key, value, flags):
        return value, flags


def _connect(addr):
    host, _, port = addr.rpartition(":")
    return _PymemcacheClient((host, int(port)), serde=_FlagsSerde(), connect_timeout=2, timeout=2)


def raw_get(client, key):
    """Returns (value bytes, flags) or (None, None)."""
    item = client.get(key)
    if item is None:
        return None, None
    return item


class Client:
    """The part of aiomcache.Client that MemcachedStorage uses."""

    def __init__(self, host, port=11211, **_):
        self._c = _PymemcacheClient((host, int(port)), serde=_FlagsSerde(), connect_timeout=2, timeout=2)

    async def get(self, key, default=None):
        _check_key(key)
        value, flags = raw_get(self._c, key)
        if value is None:
            return default
        if flags != 0:
            raise ClientException("received flags without handler", flags)
        return value

    async def set(self, key, value, exptime=0):
        _check_key(key)
        if not isinstance(exptime, int) or exptime < 0:
            raise ValidationException("exptime not int or negative", exptime)
        ok = self._c.set(key, value, expire=exptime, noreply=False)
        if not ok:
            raise ClientException("Memcached set failed", key)
        return True

    async def close(self):
        self._c.close()


def _session_view(value, max_age):
    # Decode as MemcachedStorage.load_session does, then build the real
    # Session so the view has aiohttp_session's own semantics.
    from aiohttp_session import Session

    try:
        data = json.loads(value.decode("utf-8"))
    except ValueError:
        data = None
    s = Session("peer", data=data, new=False, max_age=max_age)
    return {
        "new": s.new,
        "created": s.created,
        "identity": s.identity,
        "values": {k: json.dumps(v) for k, v in s.items()},
        "types": {k: type(v).__name__ for k, v in s.items()},
    }


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    client = _connect(argv[0])
    cmd, key = argv[1], argv[2].encode("utf-8")
    _check_key(key)
    if cmd == "get":
        value, flags = raw_get(client, key)
        out = {"found": value is not None}
        if value is not None:
            out["flags"] = flags
            out["value"] = value.decode("utf-8", "replace")
            out["session"] = _session_view(value, None)
        print(json.dumps(out))
    elif cmd == "set" and len(argv) == 5:
        ok = client.set(key, argv[3].encode("utf-8"), expire=int(argv[4]), noreply=False)
        print(json.dumps({"stored": bool(ok)}))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
