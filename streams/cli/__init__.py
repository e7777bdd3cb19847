"""The `connector` command line, one module per group of commands."""
