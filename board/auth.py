"""Staff sign-in: scrypt password hashes, signed session cookies, CSRF tokens, a brake on guessing.

Sessions are HMAC-signed cookies (user, expiry), so the board keeps no session table;
with a configured key they survive a restart of the board.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

__all__ = [
    "LoginBrake",
    "SessionSigner",
    "hash_password",
    "parse_password_hash",
    "verify_password",
]

# scrypt N=2^15, r=8, p=1: ~32 MiB and some tens of ms per check (OWASP's minimum is 2^17 with
# r=8 at 128 MiB; a board on a small gateway host trades a little of that for memory).
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
_PREFIX = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A self-describing scrypt hash: ``scrypt$N$r$p$salt$digest``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"{_PREFIX}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def parse_password_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, digest) of a hash; ValueError naming what is wrong."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("is not a 'scrypt$N$r$p$salt$digest' hash")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("has a malformed number or base64 part") from None
    if n < 2**14 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or len(salt) < 16 or len(digest) < 16:
        raise ValueError("has parameters weaker or stranger than this board accepts")
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (constant-time comparison)."""
    n, r, p, salt, digest = parse_password_hash(encoded)
    maxmem = max(_MAXMEM, 2 * 128 * n * r * p)
    candidate = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=len(digest))
    return hmac.compare_digest(candidate, digest)


# Checked for unknown user names, so a wrong name costs as long as a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


class SessionSigner:
    """Makes and checks session cookie values and the CSRF token tied to each session."""

    def __init__(self, key: bytes, lifetime_s: float) -> None:
        self._key = key
        self.lifetime_s = lifetime_s

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{body}".encode(), hashlib.sha256).digest())

    def issue(self, user: str, now_s: float) -> str:
        """A cookie value naming ``user``, valid for the lifetime from ``now_s``."""
        body = f"{_b64(user.encode())}.{int(now_s + self.lifetime_s)}"
        return f"{body}.{self._mac('session', body)}"

    def user(self, cookie: str | None, now_s: float) -> str | None:
        """The user a cookie value names, or None when it is absent, forged or expired."""
        if not cookie or cookie.count(".") != 2:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        user_b64, expires = body.split(".")
        try:
            if int(expires) < now_s:
                return None
            return _unb64(user_b64).decode()
        except ValueError:
            return None

    def csrf(self, cookie: str) -> str:
        """The token a page of this session must echo on every state-changing request."""
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        """True when ``token`` belongs to the session ``cookie``."""
        return bool(cookie and token) and hmac.compare_digest(self.csrf(cookie or ""), token or "")


@dataclass
class LoginBrake:
    """After ``limit`` failed sign-ins for one name within ``window_s``, refuse that name for the window.

    Guessing a staff password would otherwise cost only the scrypt time per try.
    """

    limit: int = 10
    window_s: float = 300.0
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def blocked(self, user: str, now_s: float) -> bool:
        """True while ``user`` has too many recent failures."""
        recent = [t for t in self._failures.get(user, []) if now_s - t < self.window_s]
        if recent:
            self._failures[user] = recent
        else:
            self._failures.pop(user, None)
        return len(recent) >= self.limit

    def failed(self, user: str, now_s: float) -> None:
        """Count one failed sign-in for ``user``."""
        self._failures.setdefault(user, []).append(now_s)

    def succeeded(self, user: str) -> None:
        """Forget ``user``'s failures."""
        self._failures.pop(user, None)
