"""`python -m ecgrhythm.cli ...` runs the `ecgrhythm` command."""

import sys

from ecgrhythm.cli import main

sys.exit(main())
