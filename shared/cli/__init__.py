"""The `turnforge` command line: argument parsing and printing only. Nothing imports this package."""
