"""One Redis user per service: nobody unauthenticated, the gateway only near its own keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from onestop.redis_client import RedisLogin
from onestop.redis_users import (
    ACL_FILE,
    ADJUDICATOR,
    GATEWAY,
    USERS,
    make_redis_users,
    password_file,
)
from onestop.storage.layout import VERSIONS_KEY, member_key, nonce_key
from onestop.tooling.redis_server import LocalRedisCluster, RedisServer


def _as(server: RedisServer, user: str, password: str | None = None) -> redis.Redis:
    assert server.users_dir is not None
    assert server.port is not None
    login = RedisLogin.from_file(user, password_file(server.users_dir, user))
    return redis.Redis(
        host="127.0.0.1", port=server.port, username=user, password=password or login.password
    )


def test_the_acl_file_holds_hashes_and_passwords_are_kept(tmp_path: Path) -> None:
    acl = make_redis_users(tmp_path)
    passwords = {user: password_file(tmp_path, user).read_text().strip() for user in USERS}
    assert all(len(password) >= 40 for password in passwords.values())
    text = acl.read_text()
    assert not any(password in text for password in passwords.values())
    assert text.startswith("user default off")
    make_redis_users(tmp_path)
    assert passwords == {user: password_file(tmp_path, user).read_text().strip() for user in USERS}
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in (acl, *tmp_path.glob("*.password")))


def test_nobody_unauthenticated_and_each_service_within_its_rules(
    redis_server: RedisServer,
) -> None:
    assert redis_server.port is not None
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get(VERSIONS_KEY)
    with pytest.raises(redis.exceptions.AuthenticationError):
        _as(redis_server, GATEWAY, password="guessed").ping()

    gateway = _as(redis_server, GATEWAY)
    assert gateway.set(nonce_key("HOSP1", "n" * 24), "1", ex=10)
    assert gateway.hgetall(VERSIONS_KEY) is not None
    for denied in (
        lambda: gateway.hgetall(member_key("M1")),
        lambda: gateway.set(member_key("M1"), "x"),
        lambda: gateway.eval("return redis.call('GET', KEYS[1])", 1, member_key("M1")),
        lambda: gateway.flushall(),
        lambda: gateway.config_get("*"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()

    adjudicator = _as(redis_server, ADJUDICATOR)
    assert adjudicator.hset(member_key("M1"), "f", "v") == 1
    assert adjudicator.delete(member_key("M1")) == 1
    for denied in (
        lambda: adjudicator.flushall(),
        lambda: adjudicator.config_set("appendonly", "no"),
        lambda: adjudicator.keys("*"),
        lambda: adjudicator.acl_list(),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()
    for client in (anonymous, gateway, adjudicator):
        client.close()


def test_every_cluster_node_refuses_anonymous_clients(redis_cluster: LocalRedisCluster) -> None:
    for node in redis_cluster.nodes:
        assert node.port is not None
        anonymous = redis.Redis(host="127.0.0.1", port=node.port)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.cluster("slots")
        anonymous.close()
    assert node.users_dir is not None
    assert (node.users_dir / ACL_FILE).exists()
