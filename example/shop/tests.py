import os
import runpy
from pathlib import Path
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.test import SimpleTestCase, TestCase, override_settings

SETTINGS_FILE = Path(__file__).with_name("settings.py")


class HealthzTests(TestCase):
    def test_ok(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "ok"})
        self.assertIn("no-store", response["Cache-Control"])

    def test_database_failure_is_503(self):
        broken = mock.MagicMock()
        broken.cursor.side_effect = OperationalError("connection refused")
        with mock.patch("shop.views.connection", broken), self.assertLogs(
            "shop.views", "ERROR"
        ), self.assertLogs("django.request", "ERROR"):
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "error", "database": "error"})

    def test_post_not_allowed(self):
        with self.assertLogs("django.request", "WARNING"):
            response = self.client.post("/healthz")
        self.assertEqual(response.status_code, 405)

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_exempt_from_ssl_redirect(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)


class SettingsFromEnvironmentTests(SimpleTestCase):
    """Evaluate settings.py in isolation under a given environment."""

    def load(self, **env):
        names = [
            "DJANGO_DEBUG",
            "DJANGO_SECRET_KEY",
            "SECRET_KEY",
            "DJANGO_ALLOWED_HOSTS",
            "DATABASE_URL",
        ]
        clean = {k: v for k, v in os.environ.items() if k not in names}
        with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
            return runpy.run_path(str(SETTINGS_FILE))

    def test_secret_key_required_without_debug(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "DJANGO_SECRET_KEY"):
            self.load()

    def test_debug_has_development_secret_key(self):
        settings = self.load(DJANGO_DEBUG="true")
        self.assertTrue(settings["DEBUG"])
        self.assertTrue(settings["SECRET_KEY"].startswith("django-insecure-"))
        self.assertFalse(settings["SECURE_SSL_REDIRECT"])

    def test_production_values(self):
        settings = self.load(
            DJANGO_SECRET_KEY="x" * 60,
            DJANGO_ALLOWED_HOSTS="shop.example.com, www.shop.example.com",
            DATABASE_URL="postgres://app:pw@db.internal:5432/shop",
        )
        self.assertFalse(settings["DEBUG"])
        self.assertTrue(settings["SECURE_SSL_REDIRECT"])
        self.assertEqual(
            settings["ALLOWED_HOSTS"], ["shop.example.com", "www.shop.example.com"]
        )
        db = settings["DATABASES"]["default"]
        self.assertEqual(db["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual((db["HOST"], db["NAME"]), ("db.internal", "shop"))

    def test_default_database_is_sqlite_next_to_manage_py(self):
        settings = self.load(DJANGO_DEBUG="true")
        db = settings["DATABASES"]["default"]
        self.assertEqual(db["ENGINE"], "django.db.backends.sqlite3")
        self.assertEqual(Path(db["NAME"]), SETTINGS_FILE.parent.parent / "db.sqlite3")
