#!/usr/bin/env python3
"""django-oauth-toolkit (DOT) as an authorization server for tessera's end-to-end tests.

A one-file Django project around the PyPI package as released: DOT's own views for
authorization (with its consent page), token, revocation, introspection, device
authorization and device page, OpenID discovery, UserInfo, JWKS and RP-initiated logout;
Django's own login page. Nothing of the protocol is written here. What is ours:

- the users and clients below, created at start in a fresh SQLite file;
- `GET /test/counters`: token requests by grant type and refresh answers that were
  `invalid_grant`, counted by a WSGI wrapper (as tests/provider counts them).

It binds 127.0.0.1 only, on a free port, prints `READY {"issuer": ...}` on stdout, and
exits when its stdin closes. Environment: ACCESS_TOKEN_TTL (seconds, default 3600),
DOT_LOG=1 for request logs on stderr.
"""

import io
import json
import os
import socket
import sys
import tempfile
import threading
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

USERS = [
    # username, password, email, first name, last name
    ("alice", "alice-password", "alice@example.test", "Alice", "Example"),
]
PUBLIC_BROWSER_CLIENT = "tessera-cli"
PUBLIC_DEVICE_CLIENT = "tessera-device"
INTROSPECTOR = ("tessera-introspector", "introspector-secret")


def rsa_key_pem():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def configure(issuer, db_path, ttl):
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="tessera-e2e-only",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": db_path,
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [os.path.join(HERE, "templates")],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": ["django.template.context_processors.request"]
                },
            }
        ],
        LOGIN_URL="/accounts/login/",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGGING_CONFIG=None,
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_ISS_ENDPOINT": issuer,
            "OIDC_RSA_PRIVATE_KEY": rsa_key_pem(),
            "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
            "OAUTH2_VALIDATOR_CLASS": "validator.Validator",
            "SCOPES": {
                "openid": "OpenID Connect",
                "profile": "Your name",
                "email": "Your email address",
                "offline_access": "Stay signed in",
                "introspection": "Introspect tokens",
            },
            "DEFAULT_SCOPES": ["openid"],
            "PKCE_REQUIRED": True,
            "ACCESS_TOKEN_EXPIRE_SECONDS": ttl,
            "ROTATE_REFRESH_TOKEN": True,
            # Off by default in DOT; on here, so that two refreshes with one token would
            # revoke the grant (the 16-process test then means something).
            "REFRESH_TOKEN_REUSE_PROTECTION": True,
            "OAUTH_DEVICE_VERIFICATION_URI": issuer + "/device/",
            "DEVICE_FLOW_INTERVAL": 1,
        },
    )
    import django

    django.setup()


urlpatterns = []


def routes():
    from django.contrib.auth import views as auth_views
    from django.urls import include, path
    from oauth2_provider import urls as dot_urls

    global urlpatterns
    urlpatterns = [
        path("accounts/login/", auth_views.LoginView.as_view()),
        # RFC 8414 metadata at the origin, with the path-insertion form for /o.
        path("", include((dot_urls.metadata_urlpatterns, "oauth2_provider_root"))),
        path("o/", include("oauth2_provider.urls")),
    ]


def seed(issuer):
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from oauth2_provider.models import get_application_model

    call_command("migrate", verbosity=0, interactive=False)
    for username, password, email, first, last in USERS:
        User.objects.create_user(
            username, email=email, password=password, first_name=first, last_name=last
        )
    Application = get_application_model()
    common = dict(
        client_type=Application.CLIENT_PUBLIC,
        client_secret="",
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=False,
    )
    Application.objects.create(
        name="tessera (browser)",
        client_id=PUBLIC_BROWSER_CLIENT,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        # DOT matches loopback IP redirect URIs on any port (RFC 8252 §7.3).
        redirect_uris="http://127.0.0.1/callback",
        post_logout_redirect_uris="http://127.0.0.1/logged-out",
        **common,
    )
    # A DOT application has one grant type: the device flow needs a client of its own.
    Application.objects.create(
        name="tessera (device)",
        client_id=PUBLIC_DEVICE_CLIENT,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
        **common,
    )
    Application.objects.create(
        name="introspection",
        client_id=INTROSPECTOR[0],
        client_secret=INTROSPECTOR[1],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        algorithm=Application.RS256_ALGORITHM,
    )


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.token_requests = {}
        self.refresh_invalid_grant = 0
        self.revocations = 0

    def json(self):
        with self.lock:
            return json.dumps(
                {
                    "token_requests": dict(self.token_requests),
                    "refresh_invalid_grant": self.refresh_invalid_grant,
                    "revocations": self.revocations,
                }
            ).encode()


def counting(app, counters):
    """Counts token and revocation requests; answers GET /test/counters."""

    def wrapper(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/test/counters":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [counters.json()]
        if environ.get("REQUEST_METHOD") != "POST" or path not in (
            "/o/token/",
            "/o/revoke_token/",
        ):
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        if path == "/o/revoke_token/":
            with counters.lock:
                counters.revocations += 1
            return app(environ, start_response)
        grant = parse_qs(body.decode("utf-8", "replace")).get("grant_type", [""])[0]
        with counters.lock:
            counters.token_requests[grant] = counters.token_requests.get(grant, 0) + 1
        chunks = list(app(environ, start_response))
        if grant == "refresh_token" and b"invalid_grant" in b"".join(chunks):
            with counters.lock:
                counters.refresh_invalid_grant += 1
        return chunks

    return wrapper


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        if os.environ.get("DOT_LOG"):
            super().log_message(format, *args)


def main():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    issuer = f"http://127.0.0.1:{port}/o"
    ttl = int(os.environ.get("ACCESS_TOKEN_TTL", "3600"))
    workdir = tempfile.mkdtemp(prefix="tessera-dot-")
    configure(issuer, os.path.join(workdir, "db.sqlite3"), ttl)
    routes()
    seed(issuer)

    from django.core.wsgi import get_wsgi_application

    counters = Counters()
    httpd = make_server(
        "127.0.0.1",
        port,
        counting(get_wsgi_application(), counters),
        server_class=Server,
        handler_class=QuietHandler,
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("READY " + json.dumps({"issuer": issuer}), flush=True)
    # Exits when the test closes stdin (or dies).
    sys.stdin.read()
    httpd.shutdown()


if __name__ == "__main__":
    main()
