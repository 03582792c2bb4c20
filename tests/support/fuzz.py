"""How hard the grammar fuzz tests push: 20,000 examples each under `make test`.

Set PXED_FUZZ_EXAMPLES lower for a quick local run.
"""

import os

from hypothesis import settings

FUZZ_EXAMPLES = int(os.environ.get("PXED_FUZZ_EXAMPLES", "2000"))
fuzz_settings = settings(max_examples=FUZZ_EXAMPLES, deadline=None)
