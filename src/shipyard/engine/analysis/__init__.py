"""Pure analysis: measurements → rollback conditions and canary judgement → verdicts (docs/analysis.md).

measurements (Sample, Window, histograms) · conditions (triggers and the `for` semantics) · stats ·
judgement (canary vs stable) · prometheus (PromQL client + parser) · watch (post-deploy watch).
"""
