"""``Test.create_test_module``: build an app for a test, as Ellar's guide does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..app import App, Lifespan
from ..di import Provider
from ._client import DEFAULT_TIMEOUT, AsyncTestClient, TestClient

__all__ = ["Test", "TestingModule"]

_UNSET: Any = object()


class TestingModule:
    """The pieces of an app under test; the app itself is built on first use.

    Made by :meth:`Test.create_test_module`.
    """

    __test__ = False

    def __init__(self, **app_kwargs: Any) -> None:
        self._app_kwargs = app_kwargs
        self._overrides: list[Provider] = []
        self._app: App | None = None

    def override_provider(
        self, token: type, *, use_value: Any = _UNSET, use_class: type | None = None
    ) -> TestingModule:
        """Provide ``token`` differently in this test: a ready value, or another class.

        Call it before the app is built (``create_application``/``get_test_client``).

        Raises:
            RuntimeError: The app was already built.
            ValueError: Neither or both of ``use_value`` and ``use_class`` given.
        """
        if self._app is not None:
            raise RuntimeError(
                "override_provider() must be called before the app is built "
                "(create_application(), get_test_client(), get_async_client())"
            )
        if (use_value is _UNSET) == (use_class is None):
            raise ValueError("override_provider() takes exactly one of use_value= and use_class=")
        if use_class is not None:
            self._overrides.append(Provider(token, use_class=use_class))
        else:
            self._overrides.append(Provider(token, use_value=use_value))
        return self

    def create_application(self) -> App:
        """The :class:`~triows.App` (built once; later calls return the same app)."""
        if self._app is None:
            kwargs = dict(self._app_kwargs)
            kwargs["providers"] = [*kwargs.get("providers", ()), *self._overrides]
            self._app = App(**kwargs)
        return self._app

    def get_test_client(self, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> TestClient:
        """A synchronous :class:`TestClient` for the app."""
        return TestClient(self.create_application(), timeout=timeout, **kwargs)

    def get_async_client(
        self, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any
    ) -> AsyncTestClient:
        """An :class:`AsyncTestClient` for the app (``async with`` it in a trio test)."""
        return AsyncTestClient(self.create_application(), timeout=timeout, **kwargs)


class Test:
    """Entry point for building test modules."""

    __test__ = False

    @staticmethod
    def create_test_module(
        controllers: Sequence[type] = (),
        providers: Sequence[Any] = (),
        guards: Sequence[Any] = (),
        template_folder: str | Path | None = None,
        static_folder: str | Path | None = None,
        config_module: Mapping[str, Any] | object | None = None,
        lifespan: Lifespan | None = None,
    ) -> TestingModule:
        """Describe an app for a test; ``config_module`` is the app's ``config``.

        Returns:
            A :class:`TestingModule`; call ``get_test_client()`` on it.
        """
        return TestingModule(
            controllers=controllers,
            providers=providers,
            guards=guards,
            template_folder=template_folder,
            static_folder=static_folder,
            config=config_module,
            lifespan=lifespan,
        )
