"""`python -m edgeprof`: the same command as the `edgeprof` script."""

from edgeprof.cli import main

main()
