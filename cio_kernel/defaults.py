"""Where the embedded local stack (`make up`) listens: away from the standard ports a machine may already use."""

LOCAL_NATS_URL = "nats://127.0.0.1:14222"
LOCAL_REDIS_URL = "redis://127.0.0.1:16379/0"
