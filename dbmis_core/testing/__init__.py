"""Helpers and conformance suites that plugin authors (ours and outside ones) run in their tests."""

_SUITES = ("CardFormatSuite", "DriverSuite", "TariffSuite")


def __getattr__(name: str):
    """Load the suites (and so pytest and hypothesis) only when someone asks for them."""
    if name in _SUITES:
        from . import suites

        return getattr(suites, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
