"""`python -m ecgrhythm.cli ...` runs the `ecgrhythm` command."""

import sys

from . import main

sys.exit(main())
