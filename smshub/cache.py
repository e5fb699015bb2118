"""Django's Redis cache, with each connection pool's client made once.

Django's `RedisCacheClient` makes a new `redis.Redis` for every operation, and a new client
builds its table of reply callbacks (about 170 entries) each time: that was a tenth of an API
request's CPU where the rate limit reads the cache, and a share of every worker's batch. A
client holds no state of its own besides its pool, which Django already keeps, so one per pool
serves every call. Settings use this class wherever `CACHE_URL` names Redis.
"""

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
