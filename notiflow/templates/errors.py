"""What a template that cannot render raises; the delivery activities treat both as permanent."""

from __future__ import annotations


class TemplateError(Exception):
    """A template that cannot render: syntax, unknown variable, sandbox violation. Permanent."""


class TemplateLimitError(TemplateError):
    """A template went past one of the limits in ``notiflow.templates.limits`` (its message names which)."""
