from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .models import Product


def product_as_dict(product):
    return {
        "id": product.pk,
        "name": product.name,
        "slug": product.slug,
        "category": product.category.slug,
        "price": str(product.price),
        "stock": product.stock,
        "in_stock": product.in_stock,
    }


@require_safe
def home(request):
    products = Product.objects.select_related("category")
    return render(request, "catalog/home.html", {"products": products})


@require_safe
def product_list(request):
    """JSON list of products; filter with ?category=<slug> and ?in_stock=1."""
    products = Product.objects.select_related("category")
    category = request.GET.get("category")
    if category:
        products = products.filter(category__slug=category)
    if request.GET.get("in_stock") in {"1", "true", "yes"}:
        products = products.filter(stock__gt=0)
    results = [product_as_dict(p) for p in products]
    return JsonResponse({"count": len(results), "results": results})
