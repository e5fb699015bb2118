from django.urls import path

from .views import (
    accounts,
    campaigns,
    categories,
    compose,
    dashboard,
    inbox,
    messages,
    optouts,
    reports,
    senders,
)

app_name = "campaigns"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("reports/", reports.reports_page, name="reports"),
    path("compose/", compose.compose, name="compose"),
    path("compose/counter/", compose.text_counter, name="text_counter"),
    path("compose/template/", compose.compose_template, name="compose_template"),
    path("compose/progress/<str:compose_id>/", compose.compose_progress, name="compose_progress"),
    path("campaigns/", campaigns.campaign_list, name="campaign_list"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/pause/", campaigns.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume/", campaigns.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:pk>/cancel/", campaigns.campaign_cancel, name="campaign_cancel"),
    path("campaigns/<int:pk>/export.csv", campaigns.campaign_export, name="campaign_export"),
    path("messages/", messages.message_list, name="message_list"),
    path("messages/live/", messages.message_live, name="message_live"),
    path("messages/<int:pk>/", messages.message_detail, name="message_detail"),
    path("messages/<int:pk>/status/", messages.message_status, name="message_status"),
    path("account/switch/", accounts.switch_account, name="switch_account"),
    path("account/language/", accounts.language, name="language"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/<str:number>/", inbox.thread, name="thread"),
    path("inbox/<str:number>/reply/", inbox.reply, name="reply"),
    path("opt-outs/", optouts.optout_list, name="optout_list"),
    path("opt-outs/add/", optouts.optout_add, name="optout_add"),
    path("opt-outs/import/", optouts.optout_import, name="optout_import"),
    path("opt-outs/<int:pk>/remove/", optouts.optout_remove, name="optout_remove"),
    path("categories/", categories.category_list, name="category_list"),
    path("categories/add/", categories.category_add, name="category_add"),
    path("categories/<int:pk>/remove/", categories.category_remove, name="category_remove"),
    path("senders/", senders.sender_list, name="sender_list"),
    path("senders/request/", senders.sender_request, name="sender_request"),
]
