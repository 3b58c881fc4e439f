"""The request bodies of api.md, defined once. Tests derive variants with
`{**SMS_WEBHOOK, "body": ...}` rather than redefining them."""

from __future__ import annotations

from typing import Any

# Webhooks: what the providers POST to /api/webhooks/sms and /api/webhooks/email.
SMS_WEBHOOK: dict[str, Any] = {
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "sms",
    "messaging_provider_id": "message-1",
    "body": "This is an incoming SMS message",
    "attachments": None,
    "timestamp": "2024-11-01T14:00:00Z",
}
MMS_WEBHOOK: dict[str, Any] = {
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "mms",
    "messaging_provider_id": "message-2",
    "body": "This is an incoming MMS message",
    "attachments": ["https://example.com/received-image.jpg"],
    "timestamp": "2024-11-01T14:00:00Z",
}
EMAIL_WEBHOOK: dict[str, Any] = {
    "from": "contact@gmail.com",
    "to": "user@usehatchapp.com",
    "xillio_id": "message-3",
    "body": "<html><body>This is an incoming email with <b>HTML</b> content</body></html>",
    "attachments": ["https://example.com/received-document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z",
}

# Sends: what a client POSTs to /api/messages/sms and /api/messages/email.
SMS_SEND: dict[str, Any] = {
    "from": "+12016661234",
    "to": "+18045551234",
    "type": "sms",
    "body": "Hello! This is a test SMS message.",
    "attachments": None,
    "timestamp": "2024-11-01T14:00:00Z",
}
MMS_SEND: dict[str, Any] = {
    **SMS_SEND,
    "type": "mms",
    "body": "Hello! This is a test MMS message with attachment.",
    "attachments": ["https://example.com/image.jpg"],
}
EMAIL_SEND: dict[str, Any] = {
    "from": "user@usehatchapp.com",
    "to": "contact@gmail.com",
    "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
    "attachments": ["https://example.com/document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z",
}
