"""The control plane's settings for a web server the tests start: the same, but it reads the test users' fast
password hashes (`fast_password_hashing`) instead of treating them as unknown."""

from cio_site.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
