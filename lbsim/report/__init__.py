"""HTML reports and figures of result folders, sweeps, comparisons and plans."""
