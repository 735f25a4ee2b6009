"""A small JSON document the bridge keeps across restarts, in its state directory.

The state directory is where the token file and the status file live; what the bridge learned
about the cloud (a rate-limit pause, which ratio points a plant sends as 0-100) must survive a
restart, or the restarted bridge repeats the mistake.  Without a state directory (token file
disabled) the document lives in memory only.  A file that cannot be read or written is not fatal:
one warning, then the bridge goes on without it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from sungrow2mqtt.isolarcloud.token_store import atomic_write, remove

log = logging.getLogger(__name__)


class StateFile:
    """One JSON document at ``path`` (None: kept nowhere), written atomically, mode 0600."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path

    def load(self) -> Any:
        """The stored document, or None when there is none (absent, unreadable or corrupt)."""
        if self.path is None:
            return None
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:      # ValueError: not JSON, not UTF-8
            log.warning("Ignoring state file %s (%s)", self.path,
                        getattr(exc, "strerror", None) or type(exc).__name__)
            return None

    def save(self, document: Any) -> None:
        """Replace the stored document; a failure is logged once and the file given up."""
        if self.path is None:
            return
        try:
            atomic_write(self.path, json.dumps(document, sort_keys=True))
        except OSError as exc:
            log.warning("Cannot write state file %s (%s); it is kept in memory only", self.path,
                        exc.strerror or type(exc).__name__)
            self.path = None

    def clear(self) -> None:
        """Forget the stored document."""
        if self.path is not None:
            remove(self.path, "state file")
