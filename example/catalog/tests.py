import importlib
from decimal import Decimal
from types import SimpleNamespace

from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.test import TestCase, override_settings
from django.urls import reverse

from .models import Category, Product

# Templates use {% static %}; the manifest storage used in production needs
# collectstatic first, so view tests render with the plain storage.
PLAIN_STATIC_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def make_catalog():
    tools = Category.objects.create(name="Tools", slug="tools")
    garden = Category.objects.create(name="Garden", slug="garden")
    hammer = Product.objects.create(
        category=tools, name="Hammer", slug="hammer", price=Decimal("12.50"), stock=4
    )
    saw = Product.objects.create(
        category=tools, name="Saw", slug="saw", price=Decimal("20.00"), stock=0
    )
    rake = Product.objects.create(
        category=garden, name="Rake", slug="rake", price=Decimal("8.99"), stock=10
    )
    return tools, garden, hammer, saw, rake


class ProductModelTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.tools, cls.garden, cls.hammer, cls.saw, cls.rake = make_catalog()

    def test_str(self):
        self.assertEqual(str(self.hammer), "Hammer")
        self.assertEqual(str(self.tools), "Tools")

    def test_in_stock(self):
        self.assertTrue(self.hammer.in_stock)
        self.assertFalse(self.saw.in_stock)

    def test_default_ordering_is_by_name(self):
        names = list(Product.objects.values_list("name", flat=True))
        self.assertEqual(names, ["Hammer", "Rake", "Saw"])

    def test_slug_is_unique(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Product.objects.create(
                category=self.tools, name="Other hammer", slug="hammer", price=1
            )

    def test_price_keeps_two_decimal_places(self):
        self.hammer.refresh_from_db()
        self.assertEqual(self.hammer.price, Decimal("12.50"))


class PopulateSlugsMigrationTests(TestCase):
    """The functions of the 0003 data migration, run against the current schema."""

    migration = importlib.import_module("catalog.migrations.0003_populate_product_slugs")
    schema_editor = SimpleNamespace(connection=connection)

    def test_forward_fills_blank_slug_and_avoids_collisions(self):
        tools = Category.objects.create(name="Tools", slug="tools")
        Product.objects.create(category=tools, name="Drill", slug="drill", price=5)
        blank = Product.objects.create(category=tools, name="Drill", slug="", price=6)

        self.migration.populate_slugs(apps, self.schema_editor)

        blank.refresh_from_db()
        self.assertEqual(blank.slug, "drill-2")

    def test_reverse_clears_slugs(self):
        tools = Category.objects.create(name="Tools", slug="tools")
        product = Product.objects.create(
            category=tools, name="Big Wrench", slug="", price=3
        )
        self.migration.populate_slugs(apps, self.schema_editor)
        product.refresh_from_db()
        self.assertEqual(product.slug, "big-wrench")

        self.migration.clear_slugs(apps, self.schema_editor)
        product.refresh_from_db()
        self.assertEqual(product.slug, "")


class ProductApiTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        make_catalog()

    def test_lists_all_products(self):
        response = self.client.get(reverse("product-list"), secure=True)
        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(data["count"], 3)
        self.assertEqual(
            data["results"][0],
            {
                "id": Product.objects.get(slug="hammer").pk,
                "name": "Hammer",
                "slug": "hammer",
                "category": "tools",
                "price": "12.50",
                "stock": 4,
                "in_stock": True,
            },
        )

    def test_filter_by_category(self):
        response = self.client.get(
            reverse("product-list"), {"category": "garden"}, secure=True
        )
        slugs = [p["slug"] for p in response.json()["results"]]
        self.assertEqual(slugs, ["rake"])

    def test_filter_in_stock(self):
        response = self.client.get(
            reverse("product-list"), {"in_stock": "1"}, secure=True
        )
        slugs = [p["slug"] for p in response.json()["results"]]
        self.assertEqual(slugs, ["hammer", "rake"])

    def test_post_not_allowed(self):
        with self.assertLogs("django.request", "WARNING"):
            response = self.client.post(reverse("product-list"), secure=True)
        self.assertEqual(response.status_code, 405)


@override_settings(STORAGES=PLAIN_STATIC_STORAGES)
class HomePageTests(TestCase):
    def test_lists_products_and_links_stylesheet(self):
        make_catalog()
        response = self.client.get("/", secure=True)
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "catalog/home.html")
        self.assertContains(response, "Hammer")
        self.assertContains(response, "Sold out", count=1)
        self.assertContains(response, "/static/catalog/site.css")

    def test_empty_catalog(self):
        response = self.client.get("/", secure=True)
        self.assertContains(response, "No products yet.")

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_plain_http_redirects_to_https(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 301)
        self.assertTrue(response["Location"].startswith("https://"))
