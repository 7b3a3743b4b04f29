from django.urls import path

from . import views

urlpatterns = [
    path("echo/", views.echo),  # django-websocket
    path("gws/", views.gws_echo),  # gevent-websocket's handler in front of Django
    path("db-echo/", views.db_echo),  # bench/db_connections.py
]
