"""Password hashing with scrypt and a per-user salt (``hashlib.scrypt``, no extra library).

scrypt is slow and memory-hard on purpose -- n=2**14, r=8 takes 16 MiB and
tens of milliseconds -- so a stolen table of hashes costs an attacker the same
per guess. The random salt makes equal passwords hash differently, so one
guess cannot be tried against every user at once.

Because it is slow, the API hashes in a thread (``asyncio.to_thread``): on the
event loop it would stall every other request for that long.

The stored form carries its own parameters, so they can be raised later
without breaking old hashes::

    scrypt$16384$8$1$<salt, base64>$<hash, base64>

In production: ``argon2-cffi`` (Argon2id) or ``passlib``/``bcrypt``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PasswordHasher:
    n: int = 2**14  # CPU/memory cost; a power of two
    r: int = 8  # block size
    p: int = 1  # parallelism
    salt_bytes: int = 16

    def hash(self, password: str) -> str:
        salt = os.urandom(self.salt_bytes)
        digest = _scrypt(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, stored: str) -> bool:
        """True if ``password`` is the one ``stored`` was made from; constant-time compare."""
        try:
            scheme, n, r, p, salt, digest = stored.split("$")
            expected = base64.b64decode(digest)
            params = int(n), int(r), int(p)
            salt_bytes = base64.b64decode(salt)
        except ValueError:
            return False
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, salt_bytes, *params), expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem: OpenSSL's default cap (32 MiB) is just above n=2**14, r=8; leave room.
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * 1024 * 1024)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
