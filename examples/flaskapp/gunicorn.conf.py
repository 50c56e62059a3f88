# Read by gunicorn from the working directory (the release dir) on start.

# gunicorn >= 25 opens a control socket at one per-user path by default; every instance of every
# release would share it, so it is off (older gunicorns ignore the unknown name).
control_socket_disable = True
# Finish in-flight requests on SIGTERM well inside shipyard's stop grace (30 s by default).
graceful_timeout = 20
