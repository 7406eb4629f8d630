"""Without a daemon: registration when pyscard is missing or broken, and pyscard errors mapped."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dbmis_core.errors import CardError, PluginError
from dbmis_pcsc import hooks


def test_hooks_module_does_not_import_pyscard():
    code = "import sys, dbmis_pcsc.hooks as h; h.dbmis_card_drivers(); print('smartcard' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "False", p.stderr


def test_missing_pyscard_makes_the_driver_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(hooks, "find_spec", lambda name: None)
    (spec,) = hooks.dbmis_card_drivers()
    assert spec.name == "pcsc" and "pyscard is not installed" in spec.unavailable

    from dbmis_core.plugins import DbmisPluginManager

    pm = DbmisPluginManager()
    pm.register(hooks, "pcsc")
    with pytest.raises(PluginError, match="card driver 'pcsc' is unavailable, because pyscard is"):
        pm.get_driver("pcsc")


def test_pyscard_that_cannot_load_gives_a_reader_error():
    code = textwrap.dedent("""
        import sys
        sys.modules["smartcard"] = None  # as if its C library failed to load
        from dbmis_core.errors import ReaderError
        from dbmis_pcsc import hooks
        try:
            hooks.open_reader({})
        except ReaderError as exc:
            print(exc)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("pyscard cannot be loaded"), p.stdout + p.stderr


def test_pyscard_exceptions_become_dbmis_errors():
    from smartcard.Exceptions import CardConnectionException, NoCardException, NoReadersException
    from smartcard.pcsc.PCSCExceptions import EstablishContextException

    from dbmis_core.errors import CardRemovedError, NoCardError, ReaderError
    from dbmis_pcsc.reader import translate

    cases = [(EstablishContextException(0x8010001D), ReaderError, "card reader service is not running"),
             (CardConnectionException("x", hresult=0x80100069), CardRemovedError, "removed during"),
             (NoCardException("x", 0x8010000C), NoCardError, "no card in the reader"),
             (NoReadersException(), ReaderError, "no card reader is connected"),
             (CardConnectionException("x"), CardError, "card connection failed")]
    for exc, kind, text in cases:
        err = translate(exc, "connection")
        assert type(err) is kind and text in str(err), (exc, err)
