"""Command-line tools of ctapipe-sst1m."""
