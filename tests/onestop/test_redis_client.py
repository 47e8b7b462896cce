"""Connecting to standalone Redis and to a Redis Cluster by the same URL shape; Lua on both."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from onestop.redis_client import LuaScript, RedisPipeline, RedisUnreachable, connect, run_pipeline
from onestop.tooling.redis_server import LocalRedisCluster, RedisServer, free_port
from tests.support.redis import ON_BOTH, sync_client

COUNT_AND_ECHO = LuaScript("local n = redis.call('INCR', KEYS[1])\nreturn {n, ARGV[1]}\n")


async def test_the_kind_of_redis_is_detected(
    redis_server: RedisServer, redis_cluster: LocalRedisCluster
) -> None:
    standalone = await connect(redis_server.admin_url, timeout_seconds=2, wait_seconds=0)
    cluster = await connect(redis_cluster.nodes[2].admin_url, timeout_seconds=2, wait_seconds=0)
    try:
        assert type(standalone) is aioredis.Redis
        assert isinstance(cluster, aioredis.RedisCluster)
        assert len(cluster.get_primaries()) == 3
    finally:
        await standalone.aclose()
        await cluster.aclose()


@ON_BOTH
async def test_scripts_run_alone_and_in_pipelines_after_redis_forgot_them(redis_url: str) -> None:
    client = await connect(redis_url, timeout_seconds=2, wait_seconds=0)
    keys = [f"os-test:{{g{group:03x}}}:counter" for group in range(40)]
    try:
        for _ in range(2):
            # Every node forgets its scripts, as after a restart or a failover.
            await client.script_flush()

            def build(pipe: RedisPipeline) -> None:
                for key in keys:
                    COUNT_AND_ECHO.queue(pipe, [key], [key])
                pipe.get(keys[0])

            answers = await run_pipeline(client, build, [COUNT_AND_ECHO])
            # A pipeline that hit NOSCRIPT is run again whole: safe only for scripts that
            # may repeat, which is why this one's count is 1 or 2 but the echo is exact.
            assert [answer[1] for answer in answers[:-1]] == [key.encode() for key in keys]
            await client.script_flush()
            counted, echoed = await COUNT_AND_ECHO(client, [keys[1]], ["alone"])
            assert echoed == b"alone"
            assert str(counted).encode() == await client.get(keys[1])
    finally:
        await client.aclose()


async def test_a_start_waits_for_redis_then_gives_up(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(RedisUnreachable):
        await connect(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.2, wait_seconds=0.5)

    server = RedisServer(tmp_path / "late", port=port, appendfsync="everysec")
    waiting = asyncio.create_task(connect(server.url, timeout_seconds=0.5, wait_seconds=30))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await asyncio.to_thread(server.start)
    try:
        client = await asyncio.wait_for(waiting, 30)
        assert await client.ping()
        await client.aclose()
    finally:
        server.stop()


def test_a_local_cluster_keeps_its_data_over_a_node_crash_and_a_full_restart(
    tmp_path: Path,
) -> None:
    cluster = LocalRedisCluster(tmp_path / "cluster", 2, appendfsync="always")
    cluster.start()
    try:
        client = sync_client(cluster.url)
        for number in range(50):
            client.set(f"key-{number}", number)
        client.close()
        crashed = cluster.nodes[1].process
        assert crashed is not None
        crashed.send_signal(signal.SIGKILL)
        crashed.wait()
        assert cluster.restart_if_exited(timeout=30)
        assert not cluster.restart_if_exited(timeout=30)
    finally:
        cluster.stop()
    again = LocalRedisCluster(tmp_path / "cluster", 2)
    assert [node.port for node in again.nodes] == [node.port for node in cluster.nodes]
    again.start()
    try:
        client = sync_client(again.url)
        assert [int(client.get(f"key-{number}") or -1) for number in range(50)] == list(range(50))
        client.close()
    finally:
        again.stop()
