from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from .models import Order


@require_safe
def order_detail(request, pk):
    order = get_object_or_404(
        Order.objects.prefetch_related("lines__product"), pk=pk
    )
    lines = [
        {
            "product": line.product.slug,
            "quantity": line.quantity,
            "unit_price": str(line.unit_price),
            "subtotal": str(line.subtotal),
        }
        for line in order.lines.all()
    ]
    return JsonResponse(
        {
            "id": order.pk,
            "email": order.email,
            "status": order.status,
            "lines": lines,
            "total": str(order.total),
        }
    )
