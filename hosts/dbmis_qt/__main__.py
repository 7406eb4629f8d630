"""``python -m dbmis_qt`` starts the clerk workstation."""

import sys

from .app import main

sys.exit(main())
