"""The distribution is ``django-websocket-wsgi``: no document may send users to PyPI's
``django-websocket``, the abandoned 0.3 that this package replaces.

The import name stays ``django_websocket``.  The check reads every document,
requirements file, script, configuration file and Python module (error
messages tell users what to install too) of the repository for install
commands, requirement specifiers and extras that name the old distribution.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest
from servers import REPO_DIR

NAME = "django-websocket-wsgi"

# "django-websocket" (any spelling PyPI folds together) that is not this name.
OLD = r"(?<![\w.-])django[-_.]websocket(?![-_.]?wsgi)(?![\w-])"
PATTERNS = [
    re.compile(OLD + r"\["),  # extras: django-websocket[redis]
    re.compile(OLD + r"\s*(?:===?|>=|<=|~=|!=|<|>)"),  # a requirement with a version
    re.compile(r"pip3?\s+install\b[^\n&;|]*" + OLD),  # an install command
    re.compile(r"^[+]?\s*" + OLD + r"\s*$", re.M),  # a bare requirements line
    # Prose telling to install it (the import name django_websocket is fine there).
    re.compile(r"(?:requirements|install)\b[^\n.]*`" + OLD.replace("[-_.]", "-", 1) + "`", re.I),
]
SUFFIXES = {
    ".md",
    ".txt",
    ".cfg",
    ".toml",
    ".sh",
    ".in",
    ".ini",
    ".yml",
    ".yaml",
    ".py",
    ".html",
    "",
}


def _documents() -> list[Path]:
    """The repository's text files of the kinds that hold install instructions."""
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=REPO_DIR, capture_output=True, text=True, check=True
        ).stdout.split()
        paths = [REPO_DIR / name for name in listed]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        paths = [
            path
            for path in REPO_DIR.rglob("*")
            if not any(
                part.startswith(".") or part.endswith(".egg-info")
                for part in path.relative_to(REPO_DIR).parts
            )
        ]
    this = Path(__file__).resolve()
    return [
        path
        for path in paths
        if path.is_file()
        and (path.suffix in SUFFIXES or path.name == "run")
        and path.resolve() != this
    ]


def test_documents_name_no_distribution_that_fetches_the_abandoned_package() -> None:
    offenders = []
    for path in _documents():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for pattern in PATTERNS:
            for match in pattern.finditer(text):
                start = text.rfind("\n", 0, match.start()) + 1
                if text.startswith("-", start) and not text.startswith("- ", start):
                    continue  # a line a diff removes, such as -django-websocket==0.3.0
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(REPO_DIR)}:{line}: {match.group(0)!r}")
    assert offenders == []


@pytest.mark.parametrize(
    "text",
    [
        'pip install "django-websocket[redis]"',
        "pip install django-websocket",
        "django_websocket>=0.4",
        "-django-websocket==0.3.0\n+django-websocket\n",
        "In requirements, replace `dwebsocket` with `django-websocket`.",
    ],
)
def test_the_check_catches_the_old_name(text: str) -> None:
    assert any(pattern.search(text) for pattern in PATTERNS)


@pytest.mark.parametrize(
    "text",
    [
        'pip install "django-websocket-wsgi[redis]"',
        "django-websocket 0.3 and dwebsocket",
        "python -m django_websocket 127.0.0.1:8000",
        "pip uninstall django-websocket",
    ],
)
def test_the_check_leaves_the_new_name_and_prose_alone(text: str) -> None:
    assert not any(pattern.search(text) for pattern in PATTERNS)


def test_setup_cfg_names_the_distribution_and_its_script() -> None:
    config = configparser.ConfigParser()
    config.read(REPO_DIR / "setup.cfg")
    assert config["metadata"]["name"] == NAME
    scripts = config["options.entry_points"]["console_scripts"]
    assert f"{NAME} = django_websocket.__main__:main" in scripts
