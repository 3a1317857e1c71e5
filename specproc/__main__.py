"""``python -m specproc ...``: the same command as ``specproc ...``."""
import sys

from .cli import main

sys.exit(main())
