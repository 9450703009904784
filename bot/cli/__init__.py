"""The `northstar` command line: one module per command group."""
