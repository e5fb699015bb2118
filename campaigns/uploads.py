"""Files uploaded at one step of a form and read at a later one: the compose page's CSV, a
contacts import.

Each is written to disk in chunks (never read whole) under `SMSHUB_UPLOAD_DIR`, named by a
random token, inspected, and remembered in the session with the account it belongs to: a token
of another session or account finds nothing. A session keeps its last `KEPT` uploads of each
kind; a file that nobody confirmed is removed after a day, when the next one of its kind is
saved.
"""

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext

from .models import Account

logger = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024
KEPT = 3  # per session and kind; older ones are deleted
MAX_AGE = 24 * 3600  # seconds an upload is kept on disk at most
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


class Upload:
    """A file kept for this session and account; `info` is what its inspection found (an
    instance of the subclass's `info_class`, rebuilt from the session)."""

    info_class: Callable[..., Any] = dict

    def __init__(self, folder: Path, token: str, entry: dict) -> None:
        self.token = token
        self.filename: str = entry["filename"]
        self.size: int = entry["size"]
        self.info = self.info_class(**entry["info"])
        self.path = folder / f"{token}.csv"


class Uploads:
    """The uploads of one `kind` (named in the log): their folder below `SMSHUB_UPLOAD_DIR`
    (`subfolder`, "" for the folder itself), the session key that remembers them, and the class
    they are read back as."""

    def __init__(
        self, kind: str, session_key: str, subfolder: str, upload_class: type[Upload]
    ) -> None:
        self.kind = kind
        self.session_key = session_key
        self.subfolder = subfolder
        self.upload_class = upload_class

    def folder(self) -> Path:
        return Path(settings.SMSHUB_UPLOAD_DIR) / self.subfolder

    def _entries(self, request: HttpRequest) -> dict:
        return request.session.get(self.session_key, {})

    def get(self, request: HttpRequest, token: str, account: Account) -> Upload | None:
        """The upload `token` of this session, if it is `account`'s and still on disk."""
        entry = self._entries(request).get(token) if TOKEN.fullmatch(token or "") else None
        if entry is None or entry["account"] != account.pk:
            return None
        upload = self.upload_class(self.folder(), token, entry)
        return upload if upload.path.exists() else None

    def save(
        self,
        request: HttpRequest,
        account: Account,
        chunks: Iterable[bytes],
        *,
        filename: str,
        size: int,
        inspect: Callable[[BinaryIO], Any],
        error: type[Exception],
    ) -> Upload:
        """Write `chunks` to a new file, inspect it (`inspect` reads its first lines and returns
        the info to keep, small enough for the session) and remember it.

        Raises `error` for a file larger than `MAX_BYTES`; whatever `inspect` raises (the file
        is not what this kind takes) leaves nothing behind.
        """
        if size > MAX_BYTES:
            raise error(
                gettext(
                    "The file is %(size)s; at most %(most)s can be uploaded. Split it in parts."
                )
                % {"size": filesizeformat(size), "most": filesizeformat(MAX_BYTES)}
            )
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale(folder)
        token = secrets.token_urlsafe(24)
        path = folder / f"{token}.csv"
        with open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        try:
            with open(path, "rb") as stream:
                info = inspect(stream)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        entries = self._entries(request)
        entries[token] = {
            "account": account.pk,
            "filename": Path(filename or "upload.csv").name[:100],
            "size": size,
            "at": time.time(),
            "info": asdict(info),
        }
        for old in sorted(entries, key=lambda t: entries[t]["at"])[:-KEPT]:
            (folder / f"{old}.csv").unlink(missing_ok=True)
            del entries[old]
        request.session[self.session_key] = entries
        logger.info(
            "file uploaded: kind=%s account=%s size=%s lines=%s user=%s",
            self.kind,
            account.pk,
            size,
            getattr(info, "lines", None),
            request.user.pk,
        )
        return self.upload_class(folder, token, entries[token])

    def discard(self, request: HttpRequest, token: str) -> None:
        """Forget the upload `token` of this session and remove its file."""
        entries = self._entries(request)
        if token in entries:
            (self.folder() / f"{token}.csv").unlink(missing_ok=True)
            del entries[token]
            request.session[self.session_key] = entries


def remove_stale(folder: Path) -> None:
    """Remove the files in `folder` older than `MAX_AGE`: uploads nobody confirmed."""
    cutoff = time.time() - MAX_AGE
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
