//! Faults, shards and Redis Cluster tests of the Redis engine (next commit).
