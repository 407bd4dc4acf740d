"""Reach: the send gateway (consent, caps, quiet hours, de-duplication), its outbox and the workers."""
