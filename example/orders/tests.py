from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.test import TestCase
from django.urls import reverse

from catalog.models import Category, Product

from .models import Order, OrderLine


class OrderTestData(TestCase):
    @classmethod
    def setUpTestData(cls):
        category = Category.objects.create(name="Books", slug="books")
        cls.novel = Product.objects.create(
            category=category, name="Novel", slug="novel", price=Decimal("15.00"), stock=5
        )
        cls.atlas = Product.objects.create(
            category=category, name="Atlas", slug="atlas", price=Decimal("42.10"), stock=1
        )
        cls.order = Order.objects.create(email="reader@example.com")
        OrderLine.objects.create(
            order=cls.order, product=cls.novel, quantity=3, unit_price=Decimal("15.00")
        )
        OrderLine.objects.create(
            order=cls.order, product=cls.atlas, quantity=1, unit_price=Decimal("42.10")
        )


class OrderModelTests(OrderTestData):
    def test_new_order_is_pending(self):
        self.assertEqual(self.order.status, Order.Status.PENDING)

    def test_str(self):
        self.assertEqual(str(self.order), f"Order #{self.order.pk} (reader@example.com)")

    def test_line_subtotal_and_order_total(self):
        line = self.order.lines.get(product=self.novel)
        self.assertEqual(line.subtotal, Decimal("45.00"))
        self.assertEqual(self.order.total, Decimal("87.10"))

    def test_empty_order_total_is_zero(self):
        order = Order.objects.create(email="empty@example.com")
        self.assertEqual(order.total, Decimal("0.00"))

    def test_product_appears_once_per_order(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            OrderLine.objects.create(
                order=self.order, product=self.novel, quantity=1, unit_price=1
            )

    def test_quantity_must_be_at_least_one(self):
        order = Order.objects.create(email="zero@example.com")
        with self.assertRaises(IntegrityError), transaction.atomic():
            OrderLine.objects.create(
                order=order, product=self.novel, quantity=0, unit_price=1
            )

    def test_ordered_product_cannot_be_deleted(self):
        with self.assertRaises(ProtectedError):
            self.novel.delete()


class OrderApiTests(OrderTestData):
    def test_order_detail(self):
        response = self.client.get(
            reverse("order-detail", args=[self.order.pk]), secure=True
        )
        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(data["email"], "reader@example.com")
        self.assertEqual(data["total"], "87.10")
        self.assertEqual(
            sorted(line["product"] for line in data["lines"]), ["atlas", "novel"]
        )

    def test_missing_order_is_404(self):
        with self.assertLogs("django.request", "WARNING"):
            response = self.client.get(
                reverse("order-detail", args=[999999]), secure=True
            )
        self.assertEqual(response.status_code, 404)
