"""Contacts: an account's people, their custom fields and lists (static) and segments (saved
filters), and the merge fields that personalise a text for each of them."""
