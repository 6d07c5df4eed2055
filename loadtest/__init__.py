"""Load testing (Locust) and benchmarks; see the load-test issue."""
