"""Constants that both the library and the CLI's option choices and defaults need.

Importing this module loads no numerical library, so the command modules can build `rnagan --help`
from it; the modules that enforce these values (training.networks.gan, training.data.scaler) import them from here.
"""

from __future__ import annotations

IMAGE_SIZES = (64, 128, 256)  # tile sizes the generator and critic are built for

# In log1p units 0.01 is about a 1 % change in TPM, below RNA-seq quantification noise. A smaller floor
# lets a gene that is (almost) constant in training turn ordinary values elsewhere into huge z-scores.
DEFAULT_SD_FLOOR = 1e-2
