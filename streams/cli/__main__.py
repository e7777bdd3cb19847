"""`python -m streams.cli`: the same as `connector`."""

from streams.cli.main import main

main()
