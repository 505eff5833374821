"""Real parts for the tests: a CloudWatch Logs API on loopback, a shipper process, writers."""
