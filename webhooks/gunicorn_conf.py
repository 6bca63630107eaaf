"""gunicorn's configuration for the receiver (docker-compose.yml uses it):

    gunicorn -c python:webhooks.gunicorn_conf --bind 0.0.0.0:8000 'webhooks:create_app()'

The settings are read in gunicorn's master, before any worker starts: invalid ones stop it with
one line. gunicorn's own lines (boot, worker exits, access) and the app's share one handler on
stderr, in ``CANCELFLOW_LOG_FORMAT`` (text lines, or one JSON object a line).
"""

from worker.logconfig import gunicorn_logconfig
from worker.settings import load_settings

logconfig_dict = gunicorn_logconfig(load_settings())
# gunicorn 25+ opens a control socket under $HOME for `gunicornc`; the receiver needs none, and
# the image's system user has no home to put it in.
control_socket_disable = True
