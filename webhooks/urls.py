"""Mounted at ``/api/v1/webhooks/`` by api/urls.py."""

from __future__ import annotations

from django.urls import path

from webhooks import views

UID = "subscriptions/<str:uid>/"

urlpatterns = [
    path("subscriptions/", views.SubscriptionListApi.as_view(), name="webhook-subscriptions"),
    path(UID, views.SubscriptionDetailApi.as_view(), name="webhook-subscription"),
    path(
        UID + "rotate-secret/",
        views.SubscriptionSecretRotateApi.as_view(),
        name="webhook-subscription-rotate-secret",
    ),
    path(UID + "deliveries/", views.DeliveryListApi.as_view(), name="webhook-deliveries"),
]
