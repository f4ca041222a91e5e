"""Signed webhooks: every state change of a job POSTed to its callback URL (docs/webhooks.md)."""
