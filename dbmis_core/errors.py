"""One error hierarchy with messages a clerk can read.

Hosts print ``str(error)`` as a single line; anything that is not a ``DbmisError`` is a bug.
"""

from __future__ import annotations


class DbmisError(Exception):
    """Root of every error DBMIS raises on purpose."""


class ValidationError(DbmisError):
    """Input a person typed is not acceptable; nothing was changed."""


class NotFound(DbmisError):
    """A record that was asked for does not exist."""


class ConfigError(DbmisError):
    """The configuration file or the plugin selection is wrong."""


class PluginError(DbmisError):
    """A plugin is unknown, unavailable, duplicated or broken."""


class PermissionDenied(DbmisError):
    """The operator lacks the permission for an operation."""


class AuthenticationError(DbmisError):
    """Wrong operator name or password."""


class BusinessRuleError(DbmisError):
    """An operation is refused by a business rule (e.g. previous vend not loaded)."""


class StorageError(DbmisError):
    """The database is unreachable, not initialised or at the wrong schema version."""


class CardError(DbmisError):
    """Base for anything that goes wrong with a card or a reader."""


class NoCardError(CardError):
    """No card is in the reader."""


class CardRemovedError(CardError):
    """The card was pulled out during an operation."""


class CardTimeoutError(CardError):
    """The reader or card did not answer in time."""


class WrongPscError(CardError):
    """The card's PSC was rejected; ``tries_left`` says how many tries remain."""

    def __init__(self, message: str, tries_left: int) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class CardLockedError(CardError):
    """The card's PSC counter is exhausted; the card can never be written again."""


class CardWriteProtectedError(CardError):
    """A write hit a protected byte or was attempted before presenting the PSC."""


class CardFormatError(CardError):
    """Card bytes are malformed, torn, forged or belong to another card or meter."""


class BlankCardError(CardFormatError):
    """The card carries no DBMIS data yet."""


class ReaderError(CardError):
    """The reader (or its service) is missing or failed."""
