"""The card master secret and the keys diversified from it.

The master secret lives in a file outside the database (0600 in a 0700 folder), so a copied database
cannot forge cards. Derivation (HMAC-SHA256):
    meter key = HMAC(master[v], "meter" | meter_no)          -- provisioned into each meter
    card key  = HMAC(meter key, "card" | card uid)           -- MACs the records on one card
    PSC       = HMAC(meter key, "psc" | card uid)[:3]        -- the card's write password
    service key = HMAC(master[v], "service")                 -- provisioned into every meter; keys
                                                                batch service cards (any meter)
A record copied onto another card (other uid) or meant for another meter fails its MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from .errors import ConfigError

TRANSPORT_PSC = b"\xff\xff\xff"


def _h(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"|".join(parts), hashlib.sha256).digest()


def card_key(meter_key: bytes, uid: bytes) -> bytes:
    return _h(meter_key, b"card", uid)


def card_psc(meter_key: bytes, uid: bytes) -> bytes:
    return _h(meter_key, b"psc", uid)[:3]


class KeyStore:
    """Versioned master secrets read from one file."""

    def __init__(self, secrets_by_version: dict[int, bytes], current: int) -> None:
        if current not in secrets_by_version:
            raise ConfigError(f"key file has no secret for its current version {current}")
        self._secrets = secrets_by_version
        self.current_version = current

    @classmethod
    def create(cls, path: Path) -> "KeyStore":
        """Create a new master secret file; refuses to overwrite an existing one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        store = cls({1: secrets.token_bytes(32)}, 1)
        data = json.dumps({"current": 1, "versions": {"1": store._secrets[1].hex()}})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return store

    @classmethod
    def load(cls, path: Path) -> "KeyStore":
        path = Path(path)
        try:
            mode = path.stat().st_mode
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"card key file {path} not found; run 'dbmis init' first") from None
        except (ValueError, OSError) as exc:
            raise ConfigError(f"card key file {path} is unreadable: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"card key file {path} is readable by others; chmod 600 it")
        try:
            versions = {int(k): bytes.fromhex(v) for k, v in raw["versions"].items()}
            return cls(versions, int(raw["current"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"card key file {path} is malformed: {exc}") from None

    @classmethod
    def load_or_create(cls, path: Path) -> "KeyStore":
        return cls.load(path) if Path(path).exists() else cls.create(path)

    def _master(self, version: int | None) -> bytes:
        v = self.current_version if version is None else version
        try:
            return self._secrets[v]
        except KeyError:
            raise ConfigError(f"no card key of version {v} in the key file") from None

    def meter_key(self, meter_no: str, version: int | None = None) -> bytes:
        return _h(self._master(version), b"meter", meter_no.encode())

    def service_key(self, version: int | None = None) -> bytes:
        """The key every meter of the utility holds, for service cards meant for any meter."""
        return _h(self._master(version), b"service")
