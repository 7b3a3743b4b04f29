"""The echo views: one for django-websocket, one for gevent-websocket's handler."""

from django.http import HttpResponse

from django_websocket import require_websocket


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


def gws_echo(request):
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        return HttpResponse("WebSocket only\n", status=400, content_type="text/plain")
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return HttpResponse()
