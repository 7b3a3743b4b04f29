"""Tests of the chat, with django-websocket's live-server test case.

Run them with ``python manage.py test chat``.
"""

from django.contrib.auth.models import User

from django_websocket.testing import HandshakeRefused, WebSocketLiveServerTestCase

from . import rooms


class ChatTests(WebSocketLiveServerTestCase):
    def setUp(self):
        self.ann = User.objects.create(username="ann")
        self.ben = User.objects.create(username="ben")

    def join(self, room, user):
        """Connect ``user`` to ``room`` and read their own join announcement."""
        ws = self.websocket_connect(f"/chat/{room}/", user=user)
        event = ws.receive_json()
        self.assertEqual(event["type"], "join")
        self.assertEqual(event["user"], user.username)
        return ws

    def test_two_users_chat_in_a_room(self):
        ann = self.join("tea", self.ann)
        ben = self.join("tea", self.ben)
        self.assertEqual(ann.receive_json(), {"type": "join", "user": "ben", "count": 2})

        ann.send("hello ben")
        expected = {"type": "message", "user": "ann", "text": "hello ben"}
        self.assertEqual(ann.receive_json(), expected)
        self.assertEqual(ben.receive_json(), expected)

        ben.close()
        self.assertEqual(ann.receive_json(), {"type": "leave", "user": "ben", "count": 1})

    def test_rooms_are_separate(self):
        ann = self.join("tea", self.ann)
        ben = self.join("coffee", self.ben)
        ann.send("only for tea")
        self.assertEqual(ann.receive_json()["text"], "only for tea")
        self.assertTrue(ben.receive_nothing(0.2))

    def test_messages_are_trimmed_and_binary_is_ignored(self):
        ann = self.join("tea", self.ann)
        ann.send(b"binary is ignored")
        ann.send("   ")
        ann.send("  hi  ")
        self.assertEqual(ann.receive_json()["text"], "hi")
        ann.send("x" * 2500)
        self.assertEqual(len(ann.receive_json()["text"]), 2000)

    def test_choosing_a_name_logs_the_test_client_in(self):
        response = self.client.post("/name/", {"name": "cleo", "next": "/chat/tea/"})
        self.assertRedirects(response, "/chat/tea/")
        # websocket_connect() carries self.client's session cookie.
        ws = self.websocket_connect("/chat/tea/")
        self.assertEqual(ws.receive_json(), {"type": "join", "user": "cleo", "count": 1})

    def test_anonymous_users_are_sent_to_the_name_page(self):
        with self.assertRaises(HandshakeRefused) as refused:
            self.websocket_connect("/chat/tea/")
        self.assertEqual(refused.exception.status, 302)
        self.assertEqual(refused.exception.headers["location"], "/name/?next=/chat/tea/")

    def test_leaving_empties_the_room(self):
        ann = self.join("tea", self.ann)
        self.assertEqual(len(rooms.members("tea")), 1)
        ann.close()
        self.assertEqual(self.live_websocket_server.wait_for_views(), [])
        self.assertEqual(rooms.members("tea"), [])


class LegacyApiTests(WebSocketLiveServerTestCase):
    def test_echo(self):
        with self.websocket_connect("/echo/") as ws:
            ws.send("text")
            self.assertEqual(ws.receive(), "text")
            ws.send(b"\x00bytes")
            self.assertEqual(ws.receive(), b"\x00bytes")

    def test_shout_accepted_by_attribute(self):
        with self.websocket_connect("/shout/") as ws:
            ws.send("hello")
            self.assertEqual(ws.receive(), "HELLO")

    def test_plain_view_refuses_websockets(self):
        with self.assertRaises(HandshakeRefused) as refused:
            self.websocket_connect("/health/")
        self.assertEqual(refused.exception.status, 400)

    def test_dwebsocket_style_chat(self):
        with self.websocket_connect("/dw/", user=User.objects.create(username="dee")) as ws:
            self.assertEqual(ws.receive(), "* dee joined")
            ws.send("hi")
            self.assertEqual(ws.receive(), "dee: hi")
