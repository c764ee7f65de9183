"""The programs: the HTTP API, the ``notiflow`` command, the dev stack and the summary schedules.

They sit above ``workers/`` so imports point one way: programs → workers → activities → workflows →
``notiflow`` (what every part shares). Nothing below imports from here.
"""
