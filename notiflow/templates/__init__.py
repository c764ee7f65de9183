"""Notification templates: an administrator's Jinja code, rendered in a bounded sandbox.

One module per concern, imported directly (this package re-exports nothing):

- ``render``: ``TemplateSource`` (a template as stored), ``render`` → ``Rendered``, the e-mail layout
  (``layout.html.j2``).
- ``errors``: ``TemplateError`` (permanent) and ``TemplateLimitError`` (a limit was reached).
- ``limits``: what one render may spend (sizes, iterations, integer bits, time) and the checks.
- ``sandbox``: the bounded Jinja environments; parsing and compiling with those limits.
- ``filters``: ``datetime``, ``hours``, ``number``, ``label`` (labels from the locale YAML files).
- ``samples``: ``sample_context``, the shape the workflows build, for validation and previews.
- ``validation``: ``validate_template``, the save-time checks.
- ``locales`` and ``defaults``: the shipped ``en.yaml`` / ``fr.yaml`` (labels, default templates).
- ``store``: templates as the activities use them (rows ↔ sources, the snapshot, picking by
  locale, seeding the defaults); the only module here that touches the database.
"""
