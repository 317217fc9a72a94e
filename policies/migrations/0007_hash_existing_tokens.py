"""Existing DRF tokens become hashed `ApiToken`s (their holders keep working); the plaintext rows are deleted."""

import hashlib

from django.db import migrations


def hash_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("policies", "ApiToken")
    for token in Token.objects.all():
        digest = hashlib.sha256(token.key.encode()).hexdigest()
        ApiToken.objects.get_or_create(key_hash=digest, defaults={"user_id": token.user_id, "prefix": token.key[:8]})
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("policies", "0006_hashed_api_tokens"), ("authtoken", "0004_alter_tokenproxy_options")]
    operations = [migrations.RunPython(hash_tokens, migrations.RunPython.noop)]
