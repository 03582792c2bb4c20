"""How hard the Hypothesis tests push.

``fuzz_settings``: random bytes into a decoder, cheap per example; 20,000 examples
each under `make test` (the issue's bar for every grammar).
``property_settings``: examples that build a server, a file tree or a whole
conversation each; a twentieth of that (1,000 under `make test`), so the suite stays
inside CI's time.

Set PXED_FUZZ_EXAMPLES lower for a quick local run.
"""

import os

from hypothesis import settings

FUZZ_EXAMPLES = int(os.environ.get("PXED_FUZZ_EXAMPLES", "2000"))
fuzz_settings = settings(max_examples=FUZZ_EXAMPLES, deadline=None)
property_settings = settings(max_examples=max(100, FUZZ_EXAMPLES // 20), deadline=None)
