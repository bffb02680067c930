"""`make bench`: tokensrv's figures next to references measured in the same run (bench/run.py)."""
