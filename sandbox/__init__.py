"""The provider sandbox: 6DOT50 (and later Paywall, Bambora) emulated on one port.

`python -m sandbox --port 9000` serves it; `create_app()` builds an app with fresh state;
`start_in_thread(app)` serves one in the background for tests. The control API lives under
`/_sandbox/` (see `sandbox.control`).
"""

from sandbox.app import RunningSandbox, create_app, start_in_thread

__all__ = ["RunningSandbox", "create_app", "start_in_thread"]
