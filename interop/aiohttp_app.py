#!/usr/bin/python3
"""A small aiohttp_session service for httpsession's interop tests.

Run it with Debian's system Python, /usr/bin/python3, which has the Debian
packages python3-aiohttp, python3-aiohttp-session, python3-cryptography,
python3-nacl, python3-redis and python3-pymemcache (scripts/testenv.sh
installs them):

    /usr/bin/python3 interop/aiohttp_app.py --storage fernet \
        --key BASE64_OF_32_RAW_BYTES --port 8081 --max-age 3600

--storage is simple | fernet | nacl | redis | memcached. --key is the
standard base64 of the 32 raw key bytes Go is given; Fernet gets it as
aiohttp_session users usually write it, the str key
base64.urlsafe_b64encode(raw). --max-age < 0 means max_age=None.
--redis-url (redis://127.0.0.1:6379/0) and --memcached-addr
(127.0.0.1:11211) choose the servers. --key-factory (redis and memcached)
is the storages' key_factory: hex (uuid4().hex, the default), uuid4str
(str(uuid4()), 36 characters) or token (secrets.token_urlsafe(16), a
shape httpsession does not read).

It prints "READY <port>" once it listens, and exits when its standard input
is closed, so it never outlives the test that started it.

Routes (all answer the session as JSON, see dump()):
    GET  /get                       the session
    POST /set?k=K&v=JSON[&max_age=N] session[K] = json.loads(JSON); max_age
                                    overrides session.max_age for this save
    POST /del?k=K                   del session[K]
    POST /invalidate                session.invalidate()
    POST /changed                   session.changed()
    POST /new                       new_session(request)
    POST /clock?at=UNIX             freezes aiohttp_session's and Fernet's
                                    clock at UNIX (empty: real time again)
    GET  /cookie                    the session cookie as aiohttp parsed it
"""

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import threading
import time
import types
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiohttp import web  # noqa: E402

import aiohttp_session  # noqa: E402
from aiohttp_session import get_session, new_session  # noqa: E402

COOKIE = "AIOHTTP_SESSION"

# The clock the tests control. aiohttp_session reads time.time() for
# "created", the max_age check and the cookie's expires; cryptography's
# Fernet for the token timestamp and its TTL; MemcachedStorage for the
# absolute exptime.
_real_time = time.time
_frozen = {"at": None}


def _now():
    at = _frozen["at"]
    return _real_time() if at is None else at


_time_shim = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("__")})
_time_shim.time = _now
aiohttp_session.time = _time_shim


KEY_FACTORIES = {
    "hex": lambda: uuid.uuid4().hex,
    "uuid4str": lambda: str(uuid.uuid4()),
    "token": lambda: secrets.token_urlsafe(16),
}


def make_storage(args):
    raw = base64.b64decode(args.key) if args.key else b""
    key_factory = KEY_FACTORIES[args.key_factory]
    max_age = None if args.max_age < 0 else args.max_age
    kind = args.storage
    if kind == "simple":
        return aiohttp_session.SimpleCookieStorage(max_age=max_age)
    if kind == "fernet":
        import cryptography.fernet
        from aiohttp_session.cookie_storage import EncryptedCookieStorage

        cryptography.fernet.time = _time_shim
        # The str form of the key: urlsafe base64 of the raw 32 bytes.
        return EncryptedCookieStorage(base64.urlsafe_b64encode(raw).decode(), max_age=max_age)
    if kind == "nacl":
        from aiohttp_session.nacl_storage import NaClCookieStorage

        return NaClCookieStorage(raw, max_age=max_age)
    if kind == "redis":
        # Debian's aiohttp_session 2.11 imports aioredis; redis-py's
        # redis.asyncio is the same API.
        import redis
        import redis.asyncio

        if not hasattr(redis.asyncio, "__version__"):
            redis.asyncio.__version__ = redis.__version__
        sys.modules["aioredis"] = redis.asyncio
        from aiohttp_session.redis_storage import RedisStorage

        return RedisStorage(redis.asyncio.from_url(args.redis_url), max_age=max_age, key_factory=key_factory)
    if kind == "memcached":
        # aiomcache is not packaged: memcached_peer.Client stands in for it.
        import memcached_peer

        sys.modules["aiomcache"] = memcached_peer
        from aiohttp_session import memcached_storage

        memcached_storage.time = _now
        host, _, port = args.memcached_addr.rpartition(":")
        return memcached_storage.MemcachedStorage(
            memcached_peer.Client(host, int(port)), max_age=max_age, key_factory=key_factory
        )
    raise SystemExit("unknown storage " + kind)


def dump(session):
    return {
        "new": session.new,
        "created": session.created,
        "identity": session.identity,
        "empty": session.empty,
        "max_age": session.max_age,
        "keys": list(session.keys()),
        # Each value as json.dumps writes it, so NaN and big ints survive
        # the trip to the Go test intact.
        "values": {k: json.dumps(v) for k, v in session.items()},
        "types": {k: type(v).__name__ for k, v in session.items()},
    }


routes = web.RouteTableDef()


@routes.get("/get")
async def get_(request):
    return web.json_response(dump(await get_session(request)))


@routes.post("/set")
async def set_(request):
    session = await get_session(request)
    session[request.query["k"]] = json.loads(request.query["v"])
    if "max_age" in request.query:
        session.max_age = int(request.query["max_age"])
    return web.json_response(dump(session))


@routes.post("/del")
async def del_(request):
    session = await get_session(request)
    del session[request.query["k"]]
    return web.json_response(dump(session))


@routes.post("/invalidate")
async def invalidate(request):
    session = await get_session(request)
    session.invalidate()
    return web.json_response(dump(session))


@routes.post("/changed")
async def changed(request):
    session = await get_session(request)
    session.changed()
    return web.json_response(dump(session))


@routes.post("/new")
async def new(request):
    return web.json_response(dump(await new_session(request)))


@routes.post("/clock")
async def clock(request):
    at = request.query.get("at", "")
    _frozen["at"] = float(at) if at else None
    return web.json_response({"now": _now()})


@routes.get("/cookie")
async def cookie(request):
    return web.json_response({"present": COOKIE in request.cookies, "value": request.cookies.get(COOKIE)})


def _exit_on_stdin_eof():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def serve(args):
    app = web.Application()
    aiohttp_session.setup(app, make_storage(args))
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    print("READY", args.port, flush=True)
    await asyncio.Event().wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", required=True, choices=["simple", "fernet", "nacl", "redis", "memcached"])
    p.add_argument("--key", default="", help="standard base64 of the 32 raw key bytes")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--memcached-addr", default="127.0.0.1:11211")
    p.add_argument("--key-factory", default="hex", choices=sorted(KEY_FACTORIES))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-age", type=int, default=3600, help="seconds; < 0 means None")
    args = p.parse_args()
    threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
