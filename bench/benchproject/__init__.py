"""A minimal Django project the benchmark serves, the same for every Django-based server."""
