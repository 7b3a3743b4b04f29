"""Tests of the chat, with django-websocket's live-server test case.

Run them with ``python manage.py test chat``.
"""

from django.contrib.auth.models import User

from django_websocket import ConnectionClosed
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

    def assertClosedWith(self, ws, code, reason):
        with self.assertRaises(ConnectionClosed):
            ws.receive()
        self.assertEqual((ws.close_code, ws.close_reason), (code, reason))

    def test_the_page_shows_how_many_are_in_the_room(self):
        self.client.force_login(self.ben)
        self.assertContains(self.client.get("/chat/tea/"), '<span id="online">0</span> here')
        self.join("tea", self.ann)
        self.assertContains(self.client.get("/chat/tea/"), '<span id="online">1</span> here')

    def test_staff_can_close_a_room_and_everyone_in_it_is_disconnected(self):
        ann = self.join("tea", self.ann)
        ben = self.join("tea", self.ben)
        ann.receive_json()  # ben's join
        elsewhere = self.join("coffee", self.ann)
        moderator = User.objects.create(username="mo", is_staff=True)
        self.client.force_login(moderator)
        self.assertContains(self.client.get("/chat/tea/"), 'id="close-room-form"')

        response = self.client.post("/chat/tea/close/")
        self.assertRedirects(response, "/")
        for ws in (ann, ben):
            self.assertClosedWith(ws, 4000, "room closed by a moderator")
        elsewhere.send("still here")
        self.assertEqual(elsewhere.receive_json()["text"], "still here")

    def test_only_staff_can_close_a_room(self):
        ann = self.join("tea", self.ann)
        self.client.force_login(self.ben)
        self.assertNotContains(self.client.get("/chat/tea/"), 'id="close-room-form"')
        self.assertEqual(self.client.post("/chat/tea/close/").status_code, 403)
        self.assertEqual(self.client.get("/chat/tea/close/").status_code, 405)
        ann.send("still open")
        self.assertEqual(ann.receive_json()["text"], "still open")

    def test_logging_out_closes_that_sessions_sockets(self):
        self.client.force_login(self.ann)
        mine = self.websocket_connect("/chat/tea/")  # this client's session
        mine.receive_json()
        other_session = self.join("tea", self.ann)  # ann again, in another session
        mine.receive_json()
        response = self.client.post("/logout/")
        self.assertRedirects(response, "/name/")
        self.assertClosedWith(mine, 4401, "logged out")
        self.assertEqual(other_session.receive_json()["type"], "leave")
        other_session.send("still logged in here")
        self.assertEqual(other_session.receive_json()["text"], "still logged in here")


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
