"""The `rnagan` command line: the entry point, presets and one module per command."""
