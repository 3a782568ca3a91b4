"""``python -m pywats.cli``: the ``pywats`` command without the console script."""

from __future__ import annotations

import sys

from pywats.cli import main

sys.exit(main())
