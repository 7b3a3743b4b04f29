"""Build script: only declares the optional C accelerator.

All package metadata lives in setup.cfg.  The extension
``django_websocket.protocol._speedups`` is a pure speed-up; when it cannot be
compiled (no C compiler, no Python headers, ...) the build prints a warning and
carries on, and the package falls back to its pure-Python code.  Set
``DJANGO_WEBSOCKET_NO_EXTENSIONS=1`` to skip the extension altogether.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# pyproject.toml requires setuptools>=64, which has these public aliases of the
# distutils error classes (there is no stdlib distutils from Python 3.12 on).
from setuptools.errors import CCompilerError, ExecError, PlatformError

ENV_SKIP = "DJANGO_WEBSOCKET_NO_EXTENSIONS"

# Everything that a missing or broken toolchain is known to raise.
BUILD_ERRORS: tuple[type[BaseException], ...] = (
    CCompilerError,
    ExecError,
    PlatformError,
    OSError,
    ValueError,  # distutils' MSVC lookup raises it on some setups
)


def _skip_requested() -> bool:
    return os.environ.get(ENV_SKIP, "").strip().lower() in {"1", "true", "yes", "on"}


def _warn(name: str, exc: BaseException) -> None:
    line = "*" * 75
    reason = f"{type(exc).__name__}: {exc}"
    sys.stderr.write(
        f"\n{line}\nWARNING: could not build the optional C extension {name}\n"
        f"  ({reason}).\n"
        "django-websocket-wsgi will be installed without it and use its pure-Python\n"
        f"fallback, which is correct but slower. Set {ENV_SKIP}=1 to skip\n"
        f"this attempt and silence this warning.\n{line}\n\n"
    )


class OptionalBuildExt(build_ext):
    """``build_ext`` that treats a failed C build as a warning, not an error."""

    def initialize_options(self) -> None:
        super().initialize_options()
        self.failed: set[str] = set()

    def run(self) -> None:
        # Failures here are typically "no compiler available at all".
        try:
            super().run()
        except BUILD_ERRORS as exc:
            self.failed.update(ext.name for ext in self.extensions)
            _warn(", ".join(ext.name for ext in self.extensions), exc)

    def build_extension(self, ext: Extension) -> None:
        # Failures here come from compiling or linking this one extension.
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self.failed.add(ext.name)
            _warn(ext.name, exc)

    def _built_only(self) -> list[Extension]:
        return [ext for ext in self.extensions if ext.name not in self.failed]

    def copy_extensions_to_source(self) -> None:
        # With --inplace (and editable installs) setuptools copies every built
        # library next to its sources; skip the ones that failed to build.
        everything = self.extensions
        self.extensions = self._built_only()
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = everything

    def get_outputs(self) -> list[str]:
        # Do not announce files that were never produced.
        everything = self.extensions
        self.extensions = self._built_only()
        try:
            return list(super().get_outputs())
        finally:
            self.extensions = everything


ext_modules = []
if _skip_requested():
    sys.stderr.write(f"{ENV_SKIP} is set: not building the C extension.\n")
else:
    ext_modules.append(
        Extension(
            "django_websocket.protocol._speedups",
            sources=["django_websocket/protocol/_speedups.c"],
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
