from django.urls import path

from tenants import views

app_name = "tenants"
urlpatterns = [
    path("install/<str:suite_id>/", views.install_start, name="install"),
    path("install/<str:suite_id>/done/", views.install_done, name="install-done"),
]
