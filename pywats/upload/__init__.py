"""Uploading queued reports to the WATS server.

- :mod:`pywats.upload.config`: :class:`UploaderConfig` and the URL rules;
- :mod:`pywats.upload.client`: the shared httpx client and transport;
- :mod:`pywats.upload.answers`: one line of text for every answer or failure;
- :mod:`pywats.upload.status`: the state and status snapshot others read;
- :mod:`pywats.upload.uploader`: :class:`Uploader`, the trio shell that carries it out.
"""

from pywats.upload.config import DEFAULT_WORKERS, UploaderConfig, api_base
from pywats.upload.status import UploaderState, UploaderStatus
from pywats.upload.uploader import Uploader

__all__ = [
    "DEFAULT_WORKERS",
    "Uploader",
    "UploaderConfig",
    "UploaderState",
    "UploaderStatus",
    "api_base",
]
