"""Make this checkout's ``django_websocket`` importable even when it is not installed.

``/work/venv/bin/pytest`` (unlike ``python -m pytest``) does not put the
working directory on ``sys.path``; without an (editable) install of the
package, the protocol tests could not import it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
