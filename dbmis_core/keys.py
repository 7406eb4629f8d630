"""The card master secret and the keys diversified from it.

The master secret lives in a file outside the database (0600 in a 0700 folder), so a copied database
cannot forge cards. Derivation (HMAC-SHA256):
    meter key = HMAC(master[v], "meter" | meter_no)          -- provisioned into each meter
    card key  = HMAC(meter key, "card" | card uid)           -- MACs the records on one card
    PSC       = HMAC(meter key, "psc" | card uid)[:3]        -- the card's write password
    service key = HMAC(master[v], "service")                 -- provisioned into every meter; keys
                                                                batch service cards (any meter)
A record copied onto another card (other uid) or meant for another meter fails its MAC.

Rotation adds a version and makes it current (temp file + fsync + rename, old versions kept), so new
cards carry the new version in their header while cards issued earlier still verify. Backups carry
the key file only encrypted with a passphrase (scrypt + AES-256-GCM), see docs/decisions/0011-backup-and-key-escrow.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError, ValidationError

ENCRYPTED_FORMAT = "dbmis-key-encrypted-1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSPHRASE = 12

TRANSPORT_PSC = b"\xff\xff\xff"


def _h(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"|".join(parts), "sha256")


# Derivations are pure, and a sale needs each several times (read, write, read-back): remembered.
@lru_cache(maxsize=4096)
def card_key(meter_key: bytes, uid: bytes) -> bytes:
    return _h(meter_key, b"card", uid)


@lru_cache(maxsize=4096)
def card_psc(meter_key: bytes, uid: bytes) -> bytes:
    return _h(meter_key, b"psc", uid)[:3]


class KeyStore:
    """Versioned master secrets read from one file."""

    def __init__(self, secrets_by_version: dict[int, bytes], current: int) -> None:
        if current not in secrets_by_version:
            raise ConfigError(f"key file has no secret for its current version {current}")
        self._secrets = secrets_by_version
        self.current_version = current
        self._meter_keys: dict[tuple[str, int], bytes] = {}

    @classmethod
    def create(cls, path: Path) -> "KeyStore":
        """Create a new master secret file; refuses to overwrite an existing one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        store = cls({1: secrets.token_bytes(32)}, 1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(store.to_json())
            f.flush()
            os.fsync(f.fileno())
        return store

    def to_json(self) -> str:
        return json.dumps({"current": self.current_version,
                           "versions": {str(v): k.hex() for v, k in sorted(self._secrets.items())}})

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._secrets))

    def save(self, path: Path) -> None:
        """Replace the key file atomically: a crash leaves the old file or the new one, never half."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=".master.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(self.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def rotate(self, path: Path) -> int:
        """Add a new master secret to the key file at ``path`` and make it current; returns its
        version. The file is re-read first so versions written by another process are kept."""
        on_disk = KeyStore.load(path)
        merged = {**on_disk._secrets, **{v: k for v, k in self._secrets.items()
                                         if v not in on_disk._secrets}}
        for v, k in self._secrets.items():
            if merged[v] != k:
                raise ConfigError(f"key file {path} holds another secret for version {v}; "
                                  "reload the key file before rotating")
        new = max(merged) + 1
        merged[new] = secrets.token_bytes(32)
        rotated = KeyStore(merged, new)
        rotated.save(path)
        self._secrets, self.current_version = merged, new
        return new

    def merge(self, other: "KeyStore") -> "KeyStore":
        """This store plus the versions only ``other`` holds (current: the newer of the two).
        The same version with two different secrets is refused: one of the files is not ours."""
        for v, k in other._secrets.items():
            if v in self._secrets and self._secrets[v] != k:
                raise ConfigError(f"key version {v} differs between the key file and the backup; "
                                  "they belong to different installations")
        return KeyStore({**other._secrets, **self._secrets},
                        max(self.current_version, other.current_version))

    def fingerprint(self) -> str:
        """Short hash identifying the secrets (safe to print; reveals nothing about them)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def encrypt(self, passphrase: str) -> bytes:
        """The key file sealed with ``passphrase`` (scrypt-derived AES-256-GCM key)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(passphrase or "") < MIN_PASSPHRASE:
            raise ValidationError(f"the backup passphrase needs at least {MIN_PASSPHRASE} characters")
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        key = _scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        sealed = AESGCM(key).encrypt(nonce, self.to_json().encode(), ENCRYPTED_FORMAT.encode())
        return json.dumps({"format": ENCRYPTED_FORMAT, "kdf": "scrypt", "n": SCRYPT_N,
                           "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(), "nonce": nonce.hex(),
                           "ciphertext": base64.b64encode(sealed).decode()}).encode()

    @classmethod
    def decrypt(cls, blob: bytes, passphrase: str) -> "KeyStore":
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            d = json.loads(blob)
            if d.get("format") != ENCRYPTED_FORMAT:
                raise ValueError(f"unknown format {d.get('format')!r}")
            key = _scrypt(passphrase or "", bytes.fromhex(d["salt"]), d["n"], d["r"], d["p"])
            sealed = base64.b64decode(d["ciphertext"])
            nonce = bytes.fromhex(d["nonce"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"encrypted key file is malformed: {exc}") from None
        try:
            raw = json.loads(AESGCM(key).decrypt(nonce, sealed, ENCRYPTED_FORMAT.encode()))
        except InvalidTag:
            raise ValidationError("wrong passphrase for the encrypted key file "
                                  "(or the file was altered)") from None
        return cls({int(k): bytes.fromhex(v) for k, v in raw["versions"].items()},
                   int(raw["current"]))

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
        v = self.current_version if version is None else version
        key = self._meter_keys.get((meter_no, v))
        if key is None:
            key = _h(self._master(v), b"meter", meter_no.encode())
            if len(self._meter_keys) >= 65536:
                self._meter_keys.clear()
            self._meter_keys[(meter_no, v)] = key
        return key

    def service_key(self, version: int | None = None) -> bytes:
        """The key every meter of the utility holds, for service cards meant for any meter."""
        return _h(self._master(version), b"service")


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def file_modes(path: Path) -> tuple[int, int]:
    """(file mode, folder mode) permission bits of the key file, for status displays and tests."""
    path = Path(path)
    return stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)
