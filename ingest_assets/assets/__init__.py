"""Assets: the per-dataset asset graph (raw pages → cleaned → facts) and its checks."""
