"""Print the API's OpenAPI schema as JSON (`python -m programs.api.openapi_dump`), for web/'s generated types.

The app is only built, never started: no database, no Temporal. The URL below is never connected to.
`make api-types` writes web/src/api/schema.d.ts from this; `make lint` checks that file is current.
"""

from __future__ import annotations

import json
import sys

from notiflow.settings import Settings

from .app import create_app  # relative: this module moves with the API package

#: create_app requires a database URL; the lifespan that would open it never runs here.
UNUSED_DATABASE_URL = "postgresql+asyncpg://openapi@localhost/openapi"


def main() -> None:
    app = create_app(Settings(database_url=UNUSED_DATABASE_URL))
    json.dump(app.openapi(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
