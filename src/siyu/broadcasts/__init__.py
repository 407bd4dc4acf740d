"""Broadcasts (群发): one message to a segment or a list, now or scheduled, through the send gateway."""
