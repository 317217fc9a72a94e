"""Brakes on guessing: failed admin logins and failed API/MCP tokens are counted per credential and client
address, and slow down whoever is failing without ever refusing someone else's valid credential (docs/access.md,
"Brakes on guessing")."""
