from django.urls import path

from callbacks import views

app_name = "callbacks"
urlpatterns = [
    path("suite/<str:suite_id>/command/", views.suite_command, name="suite-command"),
    path("suite/<str:suite_id>/data/", views.suite_data, name="suite-data"),
    path("provider/<str:corpid>/", views.provider_system, name="provider-system"),
]
