"""What the store hands its scripts: exact integers, whatever their size."""

from __future__ import annotations

import orjson

from adjudicator.store import _lists
from onestop.redis_client import connect


def test_values_travel_as_text_so_lua_never_rounds_them() -> None:
    big = 2**53 + 1  # the first integer a Lua (double) number cannot hold
    (encoded,) = _lists([("settled:total", big), ("settlements", 1)])
    assert orjson.loads(encoded) == ["settled:total", str(big), "settlements", "1"]


async def test_day_totals_beyond_two_to_the_53_stay_exact(redis_url: str) -> None:
    # The commit script adds each pair with HINCRBY, which reads the text as a 64-bit integer.
    client = await connect(redis_url, timeout_seconds=5, wait_seconds=0)
    script = "local pairs = cjson.decode(ARGV[1])\n" + (
        "for i = 1, #pairs, 2 do redis.call('HINCRBY', KEYS[1], pairs[i], pairs[i + 1]) end"
    )
    try:
        for _ in range(3):
            (argument,) = _lists([("settled:total", 2**53 + 1)])
            await client.eval(script, 1, "os-test:totals", argument)
        total = await client.hget("os-test:totals", "settled:total")
        assert total is not None
        assert int(total) == 3 * (2**53 + 1)
    finally:
        await client.aclose()
