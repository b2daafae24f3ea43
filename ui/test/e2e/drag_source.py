"""A tiny GTK window that offers one file for drag and drop (text/uri-list), so a real X11
drag can be made onto Hoist's window with xdotool. Run with Debian's python3 (python3-gi)."""
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402

uri = GLib.filename_to_uri(sys.argv[1], None)
x, y = int(sys.argv[2]), int(sys.argv[3])

win = Gtk.Window(title="hoist-drag-source")
win.set_default_size(200, 120)
win.move(x, y)
box = Gtk.EventBox()
box.add(Gtk.Label(label="drag me"))
win.add(box)
box.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
box.drag_source_add_uri_targets()


def on_get(_widget, _ctx, data, _info, _time):
    data.set_uris([uri])


box.connect("drag-data-get", on_get)
win.connect("destroy", Gtk.main_quit)
win.show_all()
Gtk.main()
