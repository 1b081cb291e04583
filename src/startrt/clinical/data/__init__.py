"""Reference tables of `startrt.clinical` (see README.md: sources, conversion, checksums)."""
