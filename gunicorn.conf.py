"""gunicorn settings, read automatically when gunicorn starts in this folder (or with -c).

gunicorn drops the app's own Server header and writes `Server: gunicorn`. Here it writes
`Server: ptmatch` instead: no product, no version (the app sends the same under the dev
server); see docs/deploying.md. Command-line options (-w, -b ...) still apply.
"""

from gunicorn.http import wsgi as _gunicorn_wsgi

# Response.__init__ reads this module global for the Server line of every response.
_gunicorn_wsgi.SERVER = "ptmatch"
