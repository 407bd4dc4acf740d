"""RFM: recency, frequency and monetary scores 1–5 per buyer over a window, and the eight RFM layers."""
