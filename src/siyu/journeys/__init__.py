"""SOP journeys: triggers and steps run per customer by a durable engine, and the staff task inbox."""
