"""Django Channels echo consumers (imported only by ``asgi.py``)."""

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer


class EchoConsumer(WebsocketConsumer):
    """Synchronous consumer: the Channels counterpart of a synchronous Django view."""

    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data, bytes_data=bytes_data)


class AsyncEchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)
