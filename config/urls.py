from django.contrib import admin
from django.urls import include, path

from tracker.admin import view_on_site
from tracker.urls import accounts_urlpatterns

urlpatterns = [
    # Ahead of the admin's own "view on site" redirect, which is not confined to an organisation.
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="admin-view-on-site",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts_urlpatterns)),
    path("api/", include("tracker.api.urls")),
    path("", include("tracker.urls")),
]
