"""The schema library Home Assistant validates with, as `vol`.

It is voluptuous. From 2026.10 on, Home Assistant validates with voluptuous's successor probatio, which
takes voluptuous's place when Home Assistant starts (same API), and its signatures name probatio's types:
the type checker is told so for those releases, which are the ones on Python 3.14 that this project
supports.
"""

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING and sys.version_info >= (3, 14):
    import probatio as vol
else:
    import voluptuous as vol

__all__ = ["vol"]
