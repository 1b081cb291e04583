"""`python -m startrt.demo` (what `make demo` runs)."""

from startrt.demo.run import main

main()
