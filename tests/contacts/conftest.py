"""For test_transfer_browser.py: Chromium and a page in it, from tests/browser_support.py."""

from ..browser_support import browser, page, viewport

__all__ = ["browser", "page", "viewport"]
