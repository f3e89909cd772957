"""The environment of a `qabot` process a test starts.

The developer's own QABOT_ and SLACK_ settings stay out (a test states what it sets), the model is
never looked up online, and the state database, where `qabot chat` records each question for
the gaps report, is a temporary one: running the tests never adds their questions to the
checkout's data/state.sqlite3, which `qabot report` reads.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_STATE_DIR = Path(tempfile.mkdtemp(prefix="qabot-tests-state-"))  # one per test process
atexit.register(shutil.rmtree, _STATE_DIR, True)
STATE_DB = _STATE_DIR / "state.sqlite3"


def qabot_environ(*drop: str, **extra: str) -> dict[str, str]:
    """This process's environment less every variable starting with QABOT_, SLACK_ or one of
    `drop`; offline; the tests' state database; then `extra`."""
    prefixes = ("QABOT_", "SLACK_", *drop)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    environ.update(HF_HUB_OFFLINE="1", QABOT_STATE_DB=str(STATE_DB))
    environ.update(extra)
    return environ
