"""The receiver: Paywall callbacks, the status API, the dashboard, health and metrics."""

from webhooks.app import create_app

__all__ = ["create_app"]
