"""shipyard: take a web service from a git commit to its environments safely."""

__version__ = "0.1.0"
