"""Error types shared by every Sorte component.

Each error carries one message that names the problem and, where it helps, what to do.
The CLI prints the message alone (no traceback) and exits with code 2.
"""


class SorteError(Exception):
    """Base class: an error a user can act on."""


class ConfigError(SorteError):
    """Invalid configuration value or file."""


class DataError(SorteError):
    """Malformed, missing or inconsistent market data."""


class StrategyError(SorteError):
    """Unknown strategy, malformed strategy module or invalid parameter."""


class CascadeError(SorteError):
    """Invalid cascade definition."""


class TradingRefused(SorteError):
    """Real trading was asked for without the explicit flag or without credentials."""


class AccountError(SorteError):
    """A request about the live exchange account that cannot be done as asked."""
