"""The overview: the figures and the revenue chart a brand sees first."""
