"""``manage.py groups_send GROUP``: send numbered messages to a group from outside any server."""

from django.core.management.base import BaseCommand

from django_websocket import groups


class Command(BaseCommand):
    help = 'Send "TAG 0" .. "TAG n-1", then "TAG end", to GROUP (tests/test_groups_redis.py).'

    def add_arguments(self, parser):
        parser.add_argument("group")
        parser.add_argument("--n", type=int, default=1)
        parser.add_argument("--tag", default="cmd")

    def handle(self, *args, group, n, tag, **options):
        for i in range(n):
            groups.send(group, f"{tag} {i}")
        groups.send(group, f"{tag} end")
        self.stdout.write(f"sent {n} to {group}")
