"""Content: message templates with personalisation, the content library (话术库), tracked short links."""
