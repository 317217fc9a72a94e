"""The policy as a document: schema, checksum, signature, and how it is stored and published in Redis."""
