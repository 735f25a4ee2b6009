"""Keep the Open API token across restarts, so a restart does not cost a login.

The document makes a token valid for 24 hours after its last use; a service that restarts (or a
``check`` run) can reuse it.  The file is written atomically, mode 0600, in a 0700 directory, and is
bound to the server and account it belongs to (by a hash, so the file names no account).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from sungrow2mqtt.secret import register

log = logging.getLogger(__name__)


class TokenStore:
    """A token file for one server + account; unreadable or foreign files are ignored, not fatal."""

    def __init__(self, path: Path, server: str, username: str) -> None:
        self.path = Path(path)
        self._owner = hashlib.sha256(f"{server}\n{username}".encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self) -> Optional[str]:
        """The stored token for this server and account, or None."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("Cannot read token file %s (%s); logging in instead", self.path,
                        exc.strerror or type(exc).__name__)
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
            token = data["token"] if data.get("owner") == self._owner else None
        except (ValueError, KeyError, TypeError, AttributeError):  # incl. UnicodeDecodeError
            log.warning("Token file %s is corrupt; ignoring it and logging in", self.path)
            return None
        if token is not None and (not isinstance(token, str) or not token):
            log.warning("Token file %s holds no usable token; logging in", self.path)
            return None
        if token:
            register(token)
        return token

    def save(self, token: str) -> None:
        """Write the token atomically with mode 0600; a failure is logged, never raised."""
        payload = json.dumps({"owner": self._owner, "token": token, "saved_at": int(time.time())})
        try:
            atomic_write(self.path, payload)
        except OSError as exc:
            log.warning("Cannot write token file %s (%s); the token is kept in memory only",
                        self.path, exc.strerror or type(exc).__name__)

    def clear(self) -> None:
        """Forget the stored token (it was refused by the server)."""
        remove(self.path, "token file")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: mode 0600, parent directory created 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def remove(path: Path, what: str) -> None:
    """Delete ``path`` if it exists; a failure is logged (naming it as ``what``), never raised."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Cannot remove %s %s (%s)", what, path, exc.strerror or type(exc).__name__)
