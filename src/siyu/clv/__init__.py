"""Predictive customer lifetime value: purchase-history summaries and the probability models fitted to
them (BG/NBD, modified BG/NBD, Pareto/NBD for purchases; Gamma-Gamma for spend)."""
