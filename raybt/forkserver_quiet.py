"""Imported first by the figure pool's fork server, and nowhere else: it ignores Ctrl-C.

Ctrl-C reaches every process of the command; stopping is the command's own
business (its workers ignore SIGINT too). Python's fork server ignores
SIGINT only once it has imported its preload modules (matplotlib and the
figures, a second or two), so a Ctrl-C in the first seconds of ``raybt run``
printed the fork server's KeyboardInterrupt traceback. Listed first in
:class:`raybt.plots.pool.FigurePool`'s preload, this module makes the fork
server ignore SIGINT from its start. It lives outside :mod:`raybt.plots`,
whose package import already loads matplotlib.
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
