"""A real pcscd with the vpcd virtual reader, and simulated SLE4442 card files put into it.

The card emulator answers APDUs with the simulated driver's card (``SimCardConnection`` on a card
file), so these tests hold the PC/SC driver to the reference semantics, through the real daemon.
"""

from __future__ import annotations

import pytest
from pcsc_helpers import DIALECTS, Slot

from dbmis_pcsc.testing import Pcscd


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory):
    """pcscd for the whole session; a missing install fails loudly instead of skipping."""
    try:
        Pcscd.check_installed()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    daemon = Pcscd(log=tmp_path_factory.mktemp("pcscd") / "pcscd.log").start()
    yield daemon
    daemon.stop()


@pytest.fixture
def slot(pcscd, tmp_path):
    s = Slot(tmp_path / "cards")
    s.folder.mkdir(exist_ok=True)
    yield s
    s.remove()


@pytest.fixture(params=DIALECTS)
def dialect(request):
    return request.param

