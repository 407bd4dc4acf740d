"""The demo brand: a seeded tea-drink chain (茶山集 ChaShanJi) generated as import files and loaded.

`generator` writes the files (pure, no database); `service` builds a demo workspace from them.
"""
