from django.contrib import admin
from django.urls import path

from catalog import views as catalog_views
from orders import views as order_views

from . import views

urlpatterns = [
    path("", catalog_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/products/", catalog_views.product_list, name="product-list"),
    path("api/orders/<int:pk>/", order_views.order_detail, name="order-detail"),
    path("admin/", admin.site.urls),
]
