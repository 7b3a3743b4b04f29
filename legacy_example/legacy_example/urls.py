from chat import views as chat
from django.urls import path
from dwchat import views as dwchat

urlpatterns = [
    # django-websocket 0.3 style (chat/views.py)
    path("", chat.room, name="lobby"),
    path("chat/<slug:room>/", chat.room, name="room"),
    path("chat/<slug:room>/close/", chat.close_room, name="close_room"),
    path("name/", chat.choose_name, name="choose_name"),
    path("logout/", chat.log_out, name="logout"),
    path("echo/", chat.echo, name="echo"),
    path("legacy/", chat.tour, name="tour"),
    path("shout/", chat.shout, name="shout"),
    path("health/", chat.health, name="health"),
    # dwebsocket style (dwchat/views.py)
    path("dw/", dwchat.chat, name="dw_chat"),
    path("dw/echo/", dwchat.echo, name="dw_echo"),
    path("dw/tour/", dwchat.tour, name="dw_tour"),
    path("dw/flagged/", dwchat.flagged, name="dw_flagged"),
    path("dw/flagged-required/", dwchat.flagged_required, name="dw_flagged_required"),
]
