"""Process limits the bench needs: a thousand open streams means thousands of descriptors."""

from __future__ import annotations

import resource


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file soft limit towards `wanted` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
