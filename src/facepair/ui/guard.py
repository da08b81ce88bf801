"""Which requests reach the web app: one ASGI layer in front of every route (server.py).

A local server with no login is reachable by every web page the user opens, so it trusts only
what a foreign page cannot forge or read:
- Host: the name the request was addressed to must be one of the server's own (loopback names,
  or with `--host` elsewhere the machine's names and each `--allow-host`): a page cannot reach it
  through a name of its own that resolves here (DNS rebinding).
- Fetch metadata: a request the browser marks as coming from another site (`Sec-Fetch-Site`
  cross-site or same-site, which includes another port of localhost) is refused, a link followed
  from another site's page included (else that page could open the app under the user's pointer
  and time a double click onto its buttons); an `Origin` other than the server's own is refused
  on every request that is not a GET.
- A secret token, made at start, printed with the address and written only into the page the
  server renders (a page elsewhere cannot read it): every request that is not a GET carries it
  in X-Facepair-Token, and every request needs it (header, `?token=` once, then an HttpOnly
  SameSite=Strict cookie for what the page loads), as Jupyter does: on 127.0.0.1 too, where
  another user of the machine could otherwise open the page, read the token in it and use the
  app (the uploads it keeps private to its user included). Browsers send a host's cookies to
  every port of it, so the cookie holds a key derived from the token that reads (GET) but does
  not open the page itself, which holds the token: another service on the same host that
  receives it can read the work folder's files through it, never change them.
- Every answer carries headers that keep the app's own page strict (a CSP with no inline script,
  no framing, no referrer) unless a route set its own (the work folder's files, server.py).

A refusal is a status and one line of JSON; the body of a refused request is read and dropped
first (a client still sending would see a reset connection instead), and nothing reaches a route.
Not defended: anyone who holds the token or has a shell on the machine."""
from __future__ import annotations

import hmac
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

TOKEN_HEADER = "x-facepair-token"
SAFE_METHODS = ("GET", "HEAD")
LINGER_S = 30.0              # a refused request's body is read (and dropped) this long at most
APP_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
           "media-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {                              # on every answer; a route's own value wins
    "content-security-policy": APP_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


HOST = re.compile(r"\[([0-9a-f:.]+)\](?::\d{1,5})?|([^\[\]:@\s/]+)(?::\d{1,5})?")


def host_name(host: str) -> str:
    """'name:port', '[::1]:port', 'name' or a bare address -> the name, lower case, without
    brackets; '' for anything a browser would not send."""
    host = host.strip().lower()
    m = HOST.fullmatch(host)
    if m:
        return m.group(1) or m.group(2)
    return host if ":" in host and re.fullmatch(r"[0-9a-f:.]+", host) else ""   # a bare IPv6


def cookie_name(port: int) -> str:
    return f"facepair-token-{port}"           # cookies ignore ports: one per server


class Guard:
    def __init__(self, app, hosts: set[str], token: str):
        self.app, self.hosts, self.token = app, {h.lower() for h in hosts}, token
        self.read_key = hmac.new(token.encode(), b"facepair: pages only", "sha256").hexdigest()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":      # no route takes one, and none passes unchecked
            await receive()                    # its "connect": closed before it is accepted (403)
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":            # the server's start and stop
            return await self.app(scope, receive, send)
        h = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self.check(scope, h)
        if refused:
            status, line = refused
            await drain(receive)
            # a page the browser opens (the bare address, an old tab after a restart) reads the
            # line as text; a request of the page's script gets it as JSON
            page = h.get("sec-fetch-dest") in ("document", "iframe") or \
                ("text/html" in h.get("accept", "") and "sec-fetch-dest" not in h)
            body = (line + "\n").encode() if page else json.dumps({"error": line}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8" if page else b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    *_encode(HEADERS.items())]})
            return await send({"type": "http.response.body", "body": body})
        cookie = self.new_cookie(scope, h)

        async def send_safe(message):
            if message["type"] == "http.response.start":
                have = {k.decode("latin-1").lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS.items() if k not in have]
                if cookie:
                    extra.append(("set-cookie", cookie))
                message = dict(message, headers=[*message.get("headers", []), *_encode(extra)])
            await send(message)

        return await self.app(scope, receive, send_safe)

    def check(self, scope, h: dict) -> tuple[int, str] | None:
        method = scope["method"]
        name = host_name(h.get("host", ""))
        if name not in self.hosts:
            return 403, (f"unknown host '{name[:100]}': start facepair ui with --allow-host "
                         f"{name[:100] or 'NAME'} to serve it under that name")
        site = h.get("sec-fetch-site")
        if site not in (None, "same-origin", "none"):
            return 403, (f"refused a {site[:20]} request: only the app's own page may call it "
                         "(to open the app, type or paste its address)")
        origin = h.get("origin")
        if method not in SAFE_METHODS and origin is not None and \
                (urlsplit(origin).netloc.lower() != h.get("host", "").lower() or origin == "null"
                 or urlsplit(origin).scheme.lower() != scope.get("scheme", "http")):
            return 403, f"refused a request from another origin ({origin[:100]})"
        stale = h.get(TOKEN_HEADER) is not None and not self.valid(h.get(TOKEN_HEADER))
        if stale or method not in SAFE_METHODS and not self.valid(h.get(TOKEN_HEADER)):
            # (a wrong token is refused on a GET too: a page of an earlier start whose reads
            # passed on the new start's cookie looked alive while every change failed)
            return 403, ("missing or wrong token: this page is from an earlier start of facepair ui "
                         "or not from it; open the address it printed in its terminal (a new one "
                         "at each start)")
        page = scope.get("path", "/") in ("", "/")        # the page holds the token itself
        if method in SAFE_METHODS and not (
                self.valid(h.get(TOKEN_HEADER)) or self.valid(_query_token(scope))
                or not page and any(hmac.compare_digest(c.encode(), self.read_key.encode())
                                    for c in _cookies(h, cookie_name(_port(scope))))):
            return 403, ("this server needs its token: open the address facepair ui printed in its "
                         "terminal, http://.../?token=... (a new one at each start)")
        return None

    def valid(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def new_cookie(self, scope, h: dict) -> str | None:
        """The first page opened with ?token= leaves a cookie for the rest (images, the report)
        that a request from another site never carries; it holds the read key, not the token."""
        if self.valid(_query_token(scope)) and \
                self.read_key not in _cookies(h, cookie_name(_port(scope))):
            return f"{cookie_name(_port(scope))}={self.read_key}; Path=/; HttpOnly; SameSite=Strict"
        return None


def _query_token(scope) -> str | None:
    return (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [None])[0]


def _cookies(h: dict, name: str) -> list[str]:
    """Every value of the cookie `name` (another server on this host may have set one too)."""
    pairs = (c.strip().partition("=") for c in h.get("cookie", "").split(";"))
    return [v for k, _, v in pairs if k == name]


def _port(scope) -> int:
    return (scope.get("server") or ("", 0))[1] or 0


def _encode(pairs):
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


async def drain(receive, seconds: float = LINGER_S):
    """Read and drop a refused request's body before answering, at most `seconds` (like nginx's
    lingering close): answered at once, a client still sending sees a reset connection instead
    of the refusal (seen in CI). Nothing is written; a client that hangs up ends it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
