"""Published reference tables shipped with startrt (see README.md in this folder for sources)."""
