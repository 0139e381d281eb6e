from django.contrib.auth import views as auth_views
from django.urls import path

from tracker import accounts, notification_views, oversight_views, plan_views, views
from tracker.forms import SignInForm

app_name = "tracker"

urlpatterns = [
    path("", views.home, name="home"),
    path("recommendations/", views.recommendation_list, name="recommendations"),
    path("recommendations/export.csv", oversight_views.export_csv, name="export-csv"),
    path("recommendations/export.xlsx", oversight_views.export_xlsx, name="export-xlsx"),
    path("dashboard/", oversight_views.dashboard_page, name="dashboard"),
    path("board-pack/", oversight_views.board_pack_latest, name="board-pack-latest"),
    path("inspections/<int:pk>/board-pack/", oversight_views.board_pack, name="board-pack"),
    path("inspections/<int:pk>/board-pack.pdf", oversight_views.board_pack_pdf, name="board-pack-pdf"),
    path("exports/<uuid:pk>/", oversight_views.export_job, name="export-job"),
    path("exports/<uuid:pk>/download/", oversight_views.export_download, name="export-download"),
    path("imports/<uuid:pk>/", oversight_views.import_job, name="import-job"),
    path("calendar/", oversight_views.calendar_settings, name="calendar"),
    path("calendar/<str:token>.ics", oversight_views.calendar_ics, name="calendar-feed"),
    path("settings/notifications/", notification_views.notification_settings, name="notification-settings"),
    path("inspections/<int:pk>/", views.inspection_detail, name="inspection"),
    path("inspections/<int:pk>/dates/", views.inspection_dates, name="inspection-dates"),
    path("recommendations/<int:pk>/", views.recommendation_detail, name="recommendation"),
    path("recommendations/<int:pk>/update/", views.post_update, name="update"),
    path("recommendations/<int:pk>/evidence/", views.add_evidence, name="add-evidence"),
    path("recommendations/<int:pk>/evidence/<int:evidence_pk>/review/", views.review_evidence, name="review-evidence"),
    path("recommendations/<int:pk>/submit/", views.submit, name="submit"),
    path("recommendations/<int:pk>/decision/", views.decide, name="decide"),
    path("recommendations/<int:pk>/reopen/", views.reopen, name="reopen"),
    path("recommendations/<int:pk>/owner/", views.reassign, name="reassign"),
    path("recommendations/<int:pk>/target-date/", views.change_target_date, name="target-date"),
    path("recommendations/<int:pk>/rag/", views.set_rag, name="rag"),
    path("evidence/<int:pk>/download/", views.evidence_download, name="evidence-download"),
    # Issue 16: the action plan and outcome measures.
    path("recommendations/<int:pk>/plan/add/", plan_views.add_action, name="plan-add"),
    path("recommendations/<int:pk>/measures/add/", plan_views.add_measure, name="measure-add"),
    path("recommendations/<int:pk>/outcome-gated/", plan_views.set_gated, name="outcome-gated"),
    path("recommendations/<int:pk>/outcome-override/", plan_views.override, name="outcome-override"),
    path("plan-actions/<int:pk>/", plan_views.update_action, name="plan-action"),
    path("plan-actions/<int:pk>/change/", plan_views.change_action, name="plan-action-change"),
    path("measures/<int:pk>/data/", plan_views.enter_data, name="measure-data"),
    path("measures/<int:pk>/data/<int:point_pk>/correct/", plan_views.correct_data, name="measure-data-correct"),
]

# Sign-in, sign-out and password reset: Django's views with this app's templates. The admin app ships
# templates under the same registration/ names and comes first, so ours are named explicitly.
# Included without a namespace in config/urls.py, because Django's views reverse these bare names.
accounts_urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", authentication_form=SignInForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password_reset/",
        accounts.ThrottledPasswordResetView.as_view(
            template_name="registration/tracker_password_reset_form.html",
            email_template_name="registration/tracker_password_reset_email.txt",
            subject_template_name="registration/tracker_password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(template_name="registration/tracker_password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(template_name="registration/tracker_password_reset_confirm.html"),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="registration/tracker_password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path(
        "password_change/",
        accounts.ThrottledPasswordChangeView.as_view(template_name="registration/tracker_password_change_form.html"),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/tracker_password_change_done.html"),
        name="password_change_done",
    ),
]
