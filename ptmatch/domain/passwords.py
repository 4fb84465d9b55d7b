"""Password policy and argon2id hashing."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ptmatch.catalog import N_
from ptmatch.domain.errors import InvalidInput
from ptmatch.domain.textnorm import nfc

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against for unknown users, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


def use_settings(settings) -> None:
    """Take the argon2 costs from Settings (or a mapping with the same keys)."""
    get = settings.get if hasattr(settings, "get") else lambda key: getattr(settings, key)
    set_parameters(
        time_cost=get("ARGON2_TIME_COST"),
        memory_kib=get("ARGON2_MEMORY_KIB"),
        parallelism=get("ARGON2_PARALLELISM"),
    )


def set_parameters(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Use these argon2id costs from now on (settings ARGON2_*; tests use cheap ones).

    Called once per process at start-up (create_app, the scheduler); hashes made with other
    costs still verify and are rehashed on the next successful login."""
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == (
        time_cost,
        memory_kib,
        parallelism,
    ):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


MIN_LENGTH = 10
MAX_LENGTH = 128

# The most common passwords of 10+ characters in public breach lists (lower-cased).
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "1q2w3e4r5t",
        "qwertyuiop",
        "1qaz2wsx3edc",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passwort123",
        "passwort1234",
        "iloveyou12",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "abcdefghij",
        "abc1234567",
        "0987654321",
        "1111111111",
        "0000000000",
        "aaaaaaaaaa",
        "q1w2e3r4t5",
        "qwertzuiop",
        "hallo12345",
        "hallo123456",
        "passwort12",
        "passwort!1",
        "sommer2024",
        "sommer2025",
        "sommer2026",
        "winter2024",
        "winter2025",
        "winter2026",
        "welcome123",
        "letmein123",
        "trustno1234",
        "football123",
        "princess123",
        "administrator",
        "changeme123",
        "ptmatch123",
        "ptmatch2026",
        "psychotherapie",
        "therapie123",
        "1234512345",
        "5555555555",
        "9876543210",
        "asdfghjkl1",
        "asdfghjklö",
        "123qweasdzxc",
        "zaq12wsxcde3",
    }
)


def check_password_policy(password: str, field: str = "password") -> None:
    """Raise InvalidInput unless the password is acceptable (in NFC, as it will be hashed).
    Never trims or truncates."""
    password = nfc(password)
    if len(password) < MIN_LENGTH:
        raise InvalidInput(N_("Mindestens 10 Zeichen."), field)
    if len(password) > MAX_LENGTH:
        raise InvalidInput(N_("Höchstens 128 Zeichen."), field)
    if "\x00" in password:
        raise InvalidInput(N_("Das Passwort enthält ein ungültiges Zeichen."), field)
    if password.lower() in COMMON_PASSWORDS:
        raise InvalidInput(
            N_("Dieses Passwort ist zu verbreitet. Bitte wählen Sie ein anderes."), field
        )


def hash_password(password: str) -> str:
    """Hash the NFC form: every Unicode spelling of the same password verifies."""
    return _hasher.hash(nfc(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check: an absent hash still costs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
