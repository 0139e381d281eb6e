from django.urls import path

from tracker import views

app_name = "tracker"

urlpatterns = [
    path("", views.home, name="home"),
    path("inspections/<int:pk>/", views.inspection_detail, name="inspection"),
    path("recommendations/<int:pk>/", views.recommendation_detail, name="recommendation"),
]
