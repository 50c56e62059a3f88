"""Alerting, pure: the metric history's points and compaction, alert rules, their state machine, and the
values rules compare. The control plane's recorder and evaluator (control/metrics_*.py, control/alerts.py)
are the thin drivers around it."""
