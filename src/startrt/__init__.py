"""startrt: runs the START-01 dosimetry-guided PRRT trial (see README.md)."""

__version__ = "0.1.0"
