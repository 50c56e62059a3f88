"""Kubernetes, pure: rendering the spec into objects, applysets, rollout status, plan diffs."""
