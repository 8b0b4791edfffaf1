"""Asterisk configuration templates for privnum (data only).

The files in ``templates/`` use ``@@name@@`` placeholders (never Asterisk's own ``${VAR}``
syntax); ``scripts/asterisk_render.py`` fills them in. Nothing here is imported as code.
"""

from __future__ import annotations
