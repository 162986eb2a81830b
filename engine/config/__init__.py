"""Loading, checking and compiling configuration."""
