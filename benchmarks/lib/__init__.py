"""What the benchmark scripts share: finding and loading runs, statistics paired by seed, tables,
the machine header, and a runner for several training runs in parallel."""
