"""The public game, the blinded rating study, statistics and exports. Imports generation and training."""
