"""The URLconf of the callback handler (wecom_provider/wsgi.py): WeCom's URLs only.

Resolving a callback then walks one include instead of every pattern of the site.
The same URLs are in wecom_provider/urls.py, so any other handler serves them too.
"""

from django.urls import include
from django.urls import path

urlpatterns = [path("callbacks/", include("callbacks.urls"))]
