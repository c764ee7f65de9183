"""Development tooling, not used in production: the whole stack on one machine (``stack``,
for `notiflow dev` and `notiflow demo`), the scripted demo (``demo``), its users (``seed``),
the SMTP catcher shared with the test suite (``mailcatcher``) and where pip put the Temporal
binaries (``binaries``).
"""
