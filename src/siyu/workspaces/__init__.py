"""Workspaces: one brand each; every row of siyu belongs to exactly one."""
