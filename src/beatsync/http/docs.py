"""Human-readable API documentation: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, both over
``/openapi.json``, both under the same Content-Security-Policy (only the service's own files run).

The Swagger UI files come from the pinned ``swagger-ui-py`` wheel (its ``swagger_ui/static``
folder, Swagger UI 5, which reads OpenAPI 3.1) and are served by this route: nothing is fetched
from a CDN when a browser opens the page. The package is located without importing it (its
``__init__`` pulls in Jinja and YAML; the page needs neither). ReDoc's standalone bundle (npm
``redoc`` 2.5.4, MIT) is vendored in ``redoc/`` (its README says where from and why): no PyPI
package ships it without a framework.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

#: the Swagger UI files the page uses, and their content types (contracts.schemas.DOCS_ASSETS documents them)
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>beatsync API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="stylesheet" href="/docs/static/index.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/static/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
};
"""

#: the page runs only its own files (the initializer is a file, not an inline script)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


#: ReDoc's files and licences (contracts.schemas.REDOC_ASSETS documents them); its version: redoc/README.md
REDOC_DIR = Path(__file__).resolve().parent / "redoc"
REDOC_ASSETS = {"redoc.standalone.js": "text/javascript; charset=utf-8", "LICENSE": "text/plain; charset=utf-8",
                "redoc.standalone.js.LICENSE.txt": "text/plain; charset=utf-8"}

#: the standalone bundle renders every ``<redoc spec-url>`` element itself on load: no inline script.
#: ``disable-search``: ReDoc searches in a worker made from a ``blob:`` URL, which the page's CSP (the
#: same as /docs) does not allow; the side menu still lists every operation
REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>beatsync API</title>
</head>
<body>
<redoc spec-url="/openapi.json" disable-search></redoc>
<script src="/redoc/static/redoc.standalone.js"></script>
</body>
</html>
"""


@functools.lru_cache(maxsize=1)
def static_dir() -> Path | None:
    """``.../site-packages/swagger_ui/static``, or None when swagger-ui-py is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None
