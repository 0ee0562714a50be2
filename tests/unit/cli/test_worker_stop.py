"""``bus worker`` stopping: clean on the first signal, at once on a second one or after the grace."""

from __future__ import annotations

import asyncio

import pytest

from bus.cli import _worker

pytestmark = pytest.mark.asyncio


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr(_worker.os, "_exit", fake_exit)
    return codes


async def test_the_first_signal_asks_for_a_clean_stop_and_a_second_exits_at_once(exits, capsys):
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    _worker.on_stop_signal(stop, loop, 60)
    assert stop.is_set() and exits == []
    with pytest.raises(Exited):
        _worker.on_stop_signal(stop, loop, 60)
    assert exits == [1]
    assert "a second stop signal" in capsys.readouterr().err


async def test_a_clean_stop_that_outlasts_the_grace_exits(exits, capsys):
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    exited = loop.create_future()
    loop.set_exception_handler(lambda _loop, context: exited.set_result(context.get("exception")))
    try:
        _worker.on_stop_signal(stop, loop, 0.01)
        assert isinstance(await asyncio.wait_for(exited, 5), Exited)  # the grace timer fired abandon()
    finally:
        loop.set_exception_handler(None)
    assert exits == [1]
    assert "still stopping after 0.01 s" in capsys.readouterr().err
