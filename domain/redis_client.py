"""The Redis client every service holds: one Redis, or a Redis Cluster (`REDIS_CLUSTER`)."""

from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = Redis | RedisCluster
