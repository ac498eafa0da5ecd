"""Property-based fuzzing of every URL and form of the site: no input may earn a 5xx or a write with a 4xx.

`site_routes()` walks the project's URLconf (config.urls), so an app included there is fuzzed without
touching this module. A test gives `known` values by URL parameter name (a live game's token, say) so
the fuzzer also reaches the code behind a successful lookup, and the form field names it has seen on the
site's pages (`form_field_names`). Each example is one request: a path built from the route with every
parameter drawn from the known values, the converter's own regex (valid-looking but arbitrary), integers
far beyond 64 bits, or any Unicode text; a method; and a body (a form of arbitrary fields, raw bytes
under an arbitrary content type, empty, or larger than Django accepts).

`check_request` sends it, asserts a status below 500, and compares a fingerprint of every table before
and after: a 4xx must leave the database exactly as it was. Each example runs in a savepoint that is
rolled back, so examples do not see each other's games.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from hypothesis import strategies as st

_PARAMETER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
# The methods a page serves come up most; the others must answer 405, never 500.
METHODS = ("GET", "GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS")
# Integers that break fixed-width columns and drivers, and the boundaries either side of them.
EDGE_INTEGERS = [0, -1, 1, 2**15, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]


@dataclass(frozen=True)
class Slot:
    """A parameter of a route: its name and the regex its converter accepts."""

    name: str
    regex: str


@dataclass(frozen=True)
class Route:
    """A URL pattern flattened to literal text and slots, e.g. 'play/' + Slot(token) + '/answer'."""

    name: str
    parts: tuple[str | Slot, ...]
    regex_parts: tuple[re.Pattern, ...] = field(default=())

    def __str__(self) -> str:
        text = "".join(p if isinstance(p, str) else f"<{p.name}>" for p in self.parts)
        return "/" + text + "".join(f"[{r.pattern}]" for r in self.regex_parts)


def site_routes(urlconf: str | None = None) -> list[Route]:
    """Every view's URL pattern in the URLconf, nested includes flattened."""
    routes: list[Route] = []

    def walk(patterns, prefix: tuple[str | Slot, ...], regexes: tuple[re.Pattern, ...], namespace: str) -> None:
        for entry in patterns:
            parts, extra = _parts(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, prefix + parts, regexes + extra, inner)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}{entry.name}" if entry.name else str(entry.pattern)
                routes.append(Route(name=name, parts=prefix + parts, regex_parts=regexes + extra))

    walk(get_resolver(urlconf).url_patterns, (), (), "")
    return routes


def _parts(pattern) -> tuple[tuple[str | Slot, ...], tuple[re.Pattern, ...]]:
    if isinstance(pattern, RoutePattern):
        pieces = _PARAMETER.split(pattern._route)
        parts: list[str | Slot] = []
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                if piece:
                    parts.append(piece)
            else:
                parts.append(Slot(piece, pattern.converters[piece].regex))
        return tuple(parts), ()
    if isinstance(pattern, RegexPattern):
        # A regex route (admin's catch-all, static files) is generated from its regex, after the literals.
        return (), (re.compile(pattern._regex),)
    raise TypeError(f"unknown URL pattern type {type(pattern).__name__}")


def _segment_text() -> st.SearchStrategy[str]:
    # Any Unicode but lone surrogates, which no URL can carry.
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


def slot_values(slot: Slot, known: dict[str, list[str]]) -> st.SearchStrategy[str]:
    choices = [
        st.from_regex(slot.regex, fullmatch=True),
        st.sampled_from(EDGE_INTEGERS).map(str),
        st.integers(min_value=-(2**200), max_value=2**200).map(str),
        _segment_text(),
    ]
    if known.get(slot.name):
        # Weighted up: a path naming a real game reaches the views' code beyond the lookup.
        choices = [st.sampled_from(known[slot.name])] * 3 + choices
    return st.one_of(choices)


@st.composite
def paths(draw, route: Route, known: dict[str, list[str]]) -> str:
    text = ""
    for part in route.parts:
        text += part if isinstance(part, str) else quote(draw(slot_values(part, known)), safe="")
    for regex in route.regex_parts:
        text += quote(draw(st.from_regex(regex, fullmatch=True)), safe="/")
    return "/" + text


def form_values(known: dict[str, list[str]], name: str | None = None) -> st.SearchStrategy[str]:
    """Values for a form field: mostly the field's own known values when it has some, else anything."""
    values = [_segment_text(), st.sampled_from(EDGE_INTEGERS).map(str),
              st.integers(min_value=-(2**200), max_value=2**200).map(str)]
    pool = sorted({v for vs in known.values() for v in vs})
    if pool:
        values.insert(0, st.sampled_from(pool))
    if known.get(name or ""):
        # Weighted up, so that whole forms are often valid and the code behind validation runs too.
        values = [st.sampled_from(known[name])] * 3 + values
    return st.one_of(values)


@dataclass(frozen=True)
class Body:
    """What a request carries: a form (dict), or raw bytes with a content type."""

    form: dict[str, str] | None = None
    raw: bytes = b""
    content_type: str = "application/octet-stream"

    def __repr__(self) -> str:  # a 3 MB body should not flood a failure report
        if self.form is not None:
            return f"Body(form={self.form!r})"
        return f"Body(raw={self.raw[:60]!r}… {len(self.raw)} bytes, content_type={self.content_type!r})"


def bodies(field_names: list[str], known: dict[str, list[str]]) -> st.SearchStrategy[Body]:
    names = st.one_of(st.sampled_from(field_names), _segment_text()) if field_names else _segment_text()
    too_big = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024
    raw_types = st.sampled_from([
        "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x",
        "application/json", "text/plain; charset=utf-8", "text/plain; charset=no-such-codec", "",
    ])
    whole_form = st.fixed_dictionaries({n: form_values(known, n) for n in field_names})
    return st.one_of(
        whole_form.map(lambda form: Body(form=form)),
        whole_form.map(lambda form: Body(form=form)),
        st.dictionaries(names, form_values(known), max_size=6).map(lambda form: Body(form=form)),
        st.builds(Body, raw=st.binary(max_size=2048), content_type=raw_types),
        st.builds(Body, raw=st.sampled_from([b"", b"a=" + b"x" * too_big, b"&" * too_big,
                                             b"%" * 256, b"a=%ff%fe"]), content_type=raw_types),
    )


def database_fingerprint() -> dict[str, str]:
    """A digest of every table's rows: equal before and after a request means it stored nothing."""
    tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
    q = connection.ops.quote_name
    sql = " UNION ALL ".join(
        f"SELECT '{t}', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {q(t)} x" for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


def form_field_names(client: Client, paths_to_read: list[str]) -> list[str]:
    """The names of the inputs on the site's pages, so bodies use the fields the views really read."""
    names: set[str] = set()
    for path in paths_to_read:
        html = client.get(path).content.decode(errors="replace")
        names.update(re.findall(r'<(?:input|select|textarea|button)\b[^>]*\bname="([^"]+)"', html))
    return sorted(names)


def send(client: Client, method: str, path: str, body: Body, headers: dict[str, str]):
    kwargs = {"headers": headers}
    if method in ("GET", "HEAD"):
        return client.generic(method, path, **kwargs)
    if body.form is not None:
        # Encoded as the browser does, so keys and values may be any text.
        data = urlencode(body.form).encode()
        return client.generic(method, path, data, content_type="application/x-www-form-urlencoded", **kwargs)
    return client.generic(method, path, body.raw, content_type=body.content_type, **kwargs)


def check_request(client: Client, method: str, path: str, body: Body, headers: dict[str, str] | None = None):
    """Send one request inside a rolled-back savepoint; assert no 5xx and no write behind a 4xx."""
    with transaction.atomic():
        before = database_fingerprint()
        response = send(client, method, path, body, headers or {})
        status = response.status_code
        assert status < 500, f"{method} {path!r} answered {status}"
        if 400 <= status < 500:
            assert database_fingerprint() == before, f"{method} {path!r} answered {status} but stored something"
        transaction.set_rollback(True)
    return response


HEADERS = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from(["application/json", "text/html", "*/*", ""]),
    "If-None-Match": st.one_of(st.just("*"), st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                                     max_size=40)),
})


def typical_requests(route: Route, known: dict[str, list[str]], field_names: list[str]) -> list[tuple]:
    """(method, path, body, headers) a real visitor would send: each slot's first known value, every field's.

    Run as explicit examples beside the random ones, so the happy path (which does store) is always
    exercised; empty when the route has a slot with no known value or a regex part.
    """
    if route.regex_parts or any(isinstance(p, Slot) and not known.get(p.name) for p in route.parts):
        return []
    path = "/" + "".join(p if isinstance(p, str) else quote(known[p.name][0], safe="") for p in route.parts)
    form = Body(form={n: known[n][0] for n in field_names if known.get(n)})
    return [("GET", path, Body(form={}), {}), ("POST", path, form, {}),
            ("POST", path, form, {"Accept": "application/json"})]
