from django.contrib import admin
from django.urls import include, path

from tracker.urls import accounts_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts_urlpatterns)),
    path("api/", include("tracker.api.urls")),
    path("", include("tracker.urls")),
]
