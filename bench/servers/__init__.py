"""One script per server under test; each takes its port as its only argument."""
