"""Per-client rate limits on the quiz's writes, counted in the shared Django cache.

Each limited request is counted twice, in fixed windows: once per client (IP address + browser cookie),
and once per IP address with a higher ceiling, so that clearing cookies does not escape the limit while
players behind one shared address are not throttled as one. The cookies are read as plain cookies, never
loaded, so the answer path touches no session row.

The browser cookie is the CSRF cookie when there is one, else the session cookie. A first-time player
has no session yet (the home page creates none: a session for every passer-by would fill the cache), but
the home page's form has already set the CSRF cookie, and a POST without it is refused by the CSRF check
before it is counted. So every new browser behind a classroom's or a hospital's one address gets its own
start budget, up to the per-IP ceiling; keyed on the session alone they all shared one bucket. The
cookie's value is the client's to choose, so it only divides the per-IP budget fairly; the per-IP
ceiling is the limit a script cannot escape.

Limits come from RNAGAN_QUIZ_RATE_LIMITS, merged over DEFAULT_LIMITS:
    {"start": {"client": (requests, window_seconds), "ip": (requests, window_seconds)}, "answer": {...}}
The load benchmark raises them; nothing else should.
Behind a proxy, set RNAGAN_CLIENT_IP_HEADER (e.g. "HTTP_X_FORWARDED_FOR"): its last entry, the one the
trusted proxy appended, is used as the client address.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

DEFAULT_LIMITS: dict[str, dict[str, tuple[int, int]]] = {
    # A person starts a handful of games an hour.
    "start": {"client": (10, 600), "ip": (60, 600)},
    # A quick player answers about one tile a second; a script answering faster is not playing.
    "answer": {"client": (90, 60), "ip": (600, 60)},
}


def limits_for(scope: str) -> dict[str, tuple[int, int]]:
    overrides = getattr(settings, "RNAGAN_QUIZ_RATE_LIMITS", {}) or {}
    return {**DEFAULT_LIMITS[scope], **{k: tuple(v) for k, v in overrides.get(scope, {}).items()}}


def client_ip(request: HttpRequest) -> str:
    header = getattr(settings, "RNAGAN_CLIENT_IP_HEADER", None)
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def browser_id(request: HttpRequest) -> str:
    """The cookie that tells browsers apart: CSRF first (set before a first game), else the session's."""
    csrf = request.COOKIES.get(settings.CSRF_COOKIE_NAME, "")
    if csrf:
        return f"csrf:{csrf}"
    return f"session:{request.COOKIES.get(settings.SESSION_COOKIE_NAME, '')}"


def _hit(key: str, window: int) -> int:
    """Count one request in a window through the Django cache API and return the count so far."""
    try:
        return cache.incr(key)
    except ValueError:
        if cache.add(key, 1, timeout=window + 1):
            return 1
        return cache.incr(key)  # another request created it between our two calls


_redis_clients: dict[str, object] = {}

# Counts one hit in each bucket: KEYS are the counters, ARGV their expiries in seconds. A counter's first
# hit starts its window. One EVALSHA replaces a pipeline of SET NX + INCR per bucket: the same single round
# trip, but redis-py packs and parses one command instead of four, which was most of the limiter's CPU.
_HIT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  counts[i] = count
end
return counts
"""
_hit_scripts: dict[str, object] = {}


def _redis_script():
    """The registered hit script when the default cache is Redis, else None (the demo's file cache, locmem)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    location = re.split("[;,]", settings.CACHES["default"]["LOCATION"])[0]  # the write server, as Django picks
    if location not in _hit_scripts:
        import redis

        client = _redis_clients.setdefault(location, redis.Redis.from_url(location))
        _hit_scripts[location] = client.register_script(_HIT_SCRIPT)  # EVALSHA, reloaded on NOSCRIPT
    return _hit_scripts[location]


def _hit_all(buckets: list[tuple[str, int]]) -> list[int]:
    """Count one request in each (key, window) bucket; on Redis all of them cost one round trip."""
    script = _redis_script()
    if script is None:
        return [_hit(key, window) for key, window in buckets]
    backend = caches["default"]
    keys = [backend.make_and_validate_key(key) for key, _ in buckets]
    return list(script(keys=keys, args=[window + 1 for _, window in buckets]))


def check(request: HttpRequest, scope: str) -> int | None:
    """Count this request; return seconds to wait when a limit is exceeded, else None."""
    ip = client_ip(request)
    identities = {"client": f"{ip}|{browser_id(request)}", "ip": ip}
    now = time.time()
    buckets, limits = [], []
    for kind, (allowed, window) in limits_for(scope).items():
        digest = hashlib.blake2b(identities[kind].encode(), digest_size=12).hexdigest()
        slot = int(now // window)
        buckets.append((f"quiz:rl:{scope}:{kind}:{digest}:{slot}", window))
        limits.append((allowed, window, slot))
    wait: int | None = None
    for count, (allowed, window, slot) in zip(_hit_all(buckets), limits, strict=True):
        if count > allowed:
            wait = max(wait or 0, int((slot + 1) * window - now) + 1)
    return wait


def wants_json(request: HttpRequest) -> bool:
    # META rather than request.headers: building the headers mapping cost more than the test itself.
    return "application/json" in request.META.get("HTTP_ACCEPT", "")


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    message = "Whoa, that was fast! Take a breath and try again in a moment."
    if wants_json(request):
        response: HttpResponse = JsonResponse({"error": message, "retry_after": retry_after}, status=429)
    else:
        response = render(request, "quiz/rate_limited.html", {"message": message, "retry_after": retry_after},
                          status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(scope: str) -> Callable:
    """View decorator: POSTs over the scope's limits get a friendly 429."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                retry_after = check(request, scope)
                if retry_after is not None:
                    return too_many_requests(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
