"""Named points where a test harness may kill the process (SIGKILL), to prove crash safety.

``crashpoint("vend.pending")`` does nothing unless the environment variable ``DBMIS_CRASH_AT``
names that point; then the process kills itself on the spot, exactly as a power cut or
``kill -9`` would, with no cleanup. Production never sets the variable.
"""

from __future__ import annotations

import os
import signal

ENV = "DBMIS_CRASH_AT"
_target = os.environ.get(ENV) or None


def crashpoint(name: str) -> None:
    if _target is not None and _target == name:
        os.kill(os.getpid(), signal.SIGKILL)
