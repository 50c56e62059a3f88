"""Who may call the control API: identities (tokens), roles, the route table, failed-attempt limits.

``Gatekeeper`` (gate.py) is what ``ApiServer`` asks for every request: who is this (401/429) and may they
(403). Handlers get the ``Identity`` and record it as the performer. See docs/access.md.
"""
