"""Live codes (活码): placements with a QR code that hands each scanner to one staff member on WeCom."""
