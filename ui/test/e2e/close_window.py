"""Asks the windows titled argv[1] to close, as a window manager does when staff click the
title bar's close button: a WM_DELETE_WINDOW client message (Xvfb runs no window manager).
Run with Debian's python3 (python3-xlib). Prints how many windows were asked."""
import sys

from Xlib import X, display, error, protocol

d = display.Display()
title = sys.argv[1]
delete = d.intern_atom("WM_DELETE_WINDOW")
protocols = d.intern_atom("WM_PROTOCOLS")


def windows(w):
    # Windows come and go while the tree is walked (tooltips, menus, WebKit's helpers): one
    # that vanished has no children to walk (#28: BadWindow here once failed a clean run).
    try:
        children = w.query_tree().children
    except (error.BadWindow, error.BadDrawable):
        return
    for child in children:
        yield child
        yield from windows(child)


asked = 0
for w in windows(d.screen().root):
    try:
        if w.get_wm_name() != title or delete not in (w.get_wm_protocols() or []):
            continue
    except Exception:  # a window gone meanwhile
        continue
    w.send_event(
        protocol.event.ClientMessage(
            window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
    )
    asked += 1
d.flush()
print(asked)
