"""`python -m startrt ...`: the same command line as the `startrt` script."""

from startrt.cli import main

main()
