"""A local BackQuant v2 server backed by a synthetic options market."""
