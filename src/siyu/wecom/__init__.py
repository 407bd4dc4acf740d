"""WeCom (企业微信) customer contact: API client, callbacks and their crypto, mass messages, moments, live codes."""
