"""What a uvicorn worker does because it is one of several: it stops when its supervisor stops."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def stop_with_supervisor() -> None:
    """Asks Linux to send this worker SIGTERM (a graceful stop) when its supervisor dies, even by SIGKILL.
    Otherwise the workers would go on serving, and holding the port, with nobody left to stop them: a
    restarted service could not listen. Docker and systemd stop them anyway; a shell's `kill -9` does not."""
    supervisor = multiprocessing.parent_process()
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with the supervisor: %s", os.strerror(ctypes.get_errno()))
        return
    if not supervisor.is_alive():  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
