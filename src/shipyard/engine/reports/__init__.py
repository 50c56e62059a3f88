"""Reports (pure): ``build.build_report`` turns gathered facts into one document; ``html.render_report``
makes it one self-contained HTML file with inline SVG charts."""
