from django.urls import path

from .testapp import views

urlpatterns = [
    path("echo/", views.echo),
    path("subprotocol/", views.subprotocol),
    path("both/", views.both),
    path("whoami/", views.whoami),
    path("server-close/", views.server_close),
    path("returns-at-once/", views.returns_at_once),
    path("boom/", views.boom),
    path("orm/", views.uses_orm),
    path("orm/each/", views.orm_per_message),
    path("orm/plain/", views.orm_plain),
    path("orm/atomic-wait/", views.orm_atomic_wait),
    path("orm/keeps-connection/", views.orm_keeps_connection),
    path("debug/database-files/", views.database_files),
    path("keepalive/", views.keepalive),
    path("legacy/", views.legacy),
    path("hub/", views.hub),
    path("undecorated/", views.undecorated),
    path("events/", views.events),
    path("reset/", views.reset),
    path("plain/", views.plain),
    path("login/", views.login),
    path("debug/state/", views.debug_state),
    path("close-callback/", views.close_callback),
    path("stream/", views.stream),
    path("linger/", views.linger),
    path("firehose/", views.firehose),
    path("debug/websockets/", views.websocket_state),
    path("slow/", views.slow),
    path("io/push/", views.io_push),
    path("io/idle-push/", views.io_idle_push),
    path("io/poll/", views.io_poll),
    path("io/timeout/", views.io_timeout),
    path("io/second-sender/", views.io_second_sender),
]

urlpatterns += [
    path("groups/member/", views.groups_member),
    path("groups/send/", views.groups_send),
    path("groups/state/", views.groups_state),
]
