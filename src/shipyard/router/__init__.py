"""shipyard's HTTP router (the data plane). Its hot-path modules run compiled when a build of exactly
these sources exists, else as plain Python (native.py)."""

from shipyard.router import native

native.install()
