"""The read-only web console at ``/console``: server-rendered pages (Jinja2) over the same use
cases as the API, signed in with an existing credential; no script, every asset packaged.

This module imports nothing, so ``api.services`` may import ``api.console.options`` while the
pages import ``api.services``; ``api.console.mount`` mounts the console on the app.
"""
