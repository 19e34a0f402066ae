"""What the server's access log may show: never a job's signed ``access`` value.

Tokens travel in headers (not logged) and share links' tokens in URL fragments (never sent);
the signed values that let ``<img>`` tags and downloads through are in query strings, which
uvicorn's access log prints. This filter blanks them.
"""

from __future__ import annotations

import logging
import re

__all__ = ["redact_access_log"]

_ACCESS = re.compile(r"(access=)[^&\s]*")


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_ACCESS.sub(r"\1***", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def redact_access_log() -> None:
    logging.getLogger("uvicorn.access").addFilter(_Redact())
