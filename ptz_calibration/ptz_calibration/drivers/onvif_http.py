"""HTTP POST of SOAP 1.2 messages with timeouts, keep-alive and HTTP digest authentication.

:class:`SoapHttpClient` keeps one persistent ``http.client`` connection per host and maps
every failure to the driver's error types: no answer in time -> :class:`DriverTimeout`;
refused, reset or closed connections -> :class:`DriverConnectionError`; HTTP errors without a
SOAP fault -> :class:`HttpStatusError`; 401 after authenticating -> :class:`OnvifAuthError`.
HTTP digest (RFC 7616, MD5 / SHA-256, ``qop=auth`` or none) is answered when the server asks for
it; the challenge is then reused (preemptive) until the server says ``stale``. Not thread-safe:
the driver serializes its exchanges. Credentials never appear in messages.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Optional

from .interface import DriverConnectionError, DriverTimeout
from .onvif_soap import OnvifAuthError, OnvifError

CONTENT_TYPE = 'application/soap+xml; charset=utf-8; action="{action}"'
MAX_REPLY = 4 * 1024 * 1024


class HttpStatusError(OnvifError):
    """The server answered with an HTTP error status and no SOAP fault."""

    def __init__(self, status: int, reason: str, operation: str = "") -> None:
        self.status = status
        super().__init__(f"{operation + ': ' if operation else ''}HTTP {status} {reason[:80]}")


_PARAM = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def parse_challenge(header: str) -> dict[str, str]:
    """Parameters of a ``WWW-Authenticate: Digest ...`` header (lower-case keys); {} if not Digest."""
    if not header or not header.strip().lower().startswith("digest"):
        return {}
    params = {}
    for key, value in _PARAM.findall(header.strip()[6:]):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        params[key.lower()] = value
    return params


def _hash(algorithm: str):
    algo = algorithm.upper().removesuffix("-SESS")
    if algo in ("MD5", ""):
        return lambda s: hashlib.md5(s.encode()).hexdigest()
    if algo == "SHA-256":
        return lambda s: hashlib.sha256(s.encode()).hexdigest()
    raise OnvifError(f"unsupported HTTP digest algorithm {algorithm!r}")


def digest_response(challenge: dict[str, str], method: str, uri: str, user: str, password: str,
                    nc: int, cnonce: str) -> str:
    """The ``Authorization: Digest ...`` value answering ``challenge`` (RFC 7616 section 3.4)."""
    algorithm = challenge.get("algorithm", "MD5")
    h = _hash(algorithm)
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    ha1 = h(f"{user}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        ncs = f"{nc:08x}"
        response = h(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    elif qops:
        raise OnvifError(f"unsupported HTTP digest qop {challenge.get('qop')!r}")
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{response}"')
    if "algorithm" in challenge:
        parts.append(f"algorithm={algorithm}")
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


@dataclass
class Reply:
    """One HTTP exchange: status, body and the system-clock times it was sent and answered."""

    status: int
    body: bytes
    sent: float
    received: float
    www_authenticate: str = ""


class _Connection(http.client.HTTPConnection):
    """An HTTP connection with Nagle's algorithm off (small request/reply exchanges)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SoapHttpClient:
    """POSTs SOAP envelopes to one HTTP server (see the module docstring)."""

    def __init__(self, host: str, port: int, timeout: float, user: str = "", password: str = "",
                 use_digest: bool = True) -> None:
        self.host, self.port, self.timeout = host, int(port), float(timeout)
        self._user, self._password = user, password
        self.use_digest = use_digest
        self._conn: Optional[http.client.HTTPConnection] = None
        self._challenge: dict[str, str] = {}
        self._nc = 0
        self.digest_used = False

    def __repr__(self) -> str:
        return f"SoapHttpClient({self.host}:{self.port}, timeout={self.timeout:g})"

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = _Connection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _authorization(self, path: str) -> Optional[str]:
        if not (self._challenge and self.use_digest):
            return None
        self._nc += 1
        return digest_response(self._challenge, "POST", path, self._user, self._password, self._nc,
                               os.urandom(8).hex())

    def post(self, path: str, body: bytes, action: str, operation: str) -> Reply:
        """POST ``body`` to ``path``; the reply (any status but 401). Raises the errors above."""
        reply = self._exchange(path, body, action, operation)
        if reply.status == 401 and self.use_digest:
            challenge = parse_challenge(reply.www_authenticate)
            if not challenge:
                raise OnvifAuthError("HTTP", "401", "the server refused the request and offers no digest "
                                     "authentication", operation)
            self._challenge, self._nc = challenge, 0  # a new (or first, or stale) challenge: answer it once
            reply = self._exchange(path, body, action, operation)
            if reply.status == 401:
                self._challenge = {}
                raise OnvifAuthError("HTTP", "401", "HTTP digest authentication refused (wrong user or password?)",
                                     operation)
            self.digest_used = True
        elif reply.status == 401:
            raise OnvifAuthError("HTTP", "401", "the server requires HTTP authentication (auth mode excludes digest)",
                                 operation)
        return reply

    def _exchange(self, path: str, body: bytes, action: str, operation: str) -> Reply:
        headers = {"Content-Type": CONTENT_TYPE.format(action=action), "Content-Length": str(len(body)),
                   "Connection": "keep-alive"}
        auth = self._authorization(path)
        if auth:
            headers["Authorization"] = auth
        where = f"{self.host}:{self.port}"
        sent = time.time()
        try:
            conn = self._connection()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_REPLY + 1)
            received = time.time()
        except socket.timeout:
            self.close()
            raise DriverTimeout(f"{operation}: no reply from {where} within {self.timeout:g} s") from None
        except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead, OSError,
                http.client.HTTPException) as exc:
            self.close()
            raise DriverConnectionError(f"{operation}: connection to {where} failed: "
                                        f"{type(exc).__name__}{': ' + str(exc)[:120] if str(exc) else ''}") from None
        if len(data) > MAX_REPLY:
            self.close()
            raise OnvifError(f"{operation}: reply larger than {MAX_REPLY} bytes")
        if response.getheader("Connection", "").lower() == "close" or response.will_close:
            self.close()
        return Reply(response.status, data, sent, received, response.getheader("WWW-Authenticate", "") or "")
