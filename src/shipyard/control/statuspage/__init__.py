"""The public status page (docs/status-page.md): what it says (``model``), its files (``html``, ``feeds``),
the writer that keeps them current, synthetic checks, and the process that serves them (``process``)."""
