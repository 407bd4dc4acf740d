"""The measures of a private domain: repurchase, the private domain's share, channel ROI and CAC."""
