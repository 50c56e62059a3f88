"""The status-page process: serves the files the control plane writes (control/statuspage/writer.py).

It imports nothing of the control plane and keeps no state of its own, so it keeps answering with the
last page written while the control plane is down or being restarted.
"""
