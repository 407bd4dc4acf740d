"""Analytics beyond the store: the Parquet export of a workspace and the engines (Spark) that run the
metrics' own statements over it."""
