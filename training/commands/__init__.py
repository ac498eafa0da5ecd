"""One module per `rnagan` command (or family of commands); see training.cli."""
