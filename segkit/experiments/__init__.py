"""The research workflow over many runs: reading work dirs back, comparing runs, k-fold training."""
