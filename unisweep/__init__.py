"""The `unisweep` console script's package: the command line that gathers unified/, sweeps/ and analysis/."""
