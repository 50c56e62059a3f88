"""Deploy orchestration: gather a plan's inputs, prepare, apply, record; canaries, watches, adoption."""
