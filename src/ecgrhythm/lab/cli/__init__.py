"""The lab's commands, plugged into `ecgrhythm` by entry points (see `ecgrhythm.cli`)."""
