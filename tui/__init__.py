"""The pywats terminal UI (Textual): ``pywats tui`` runs :func:`tui.run.main`.

See ``docs/tui.md``. :mod:`tui.app` is the app, :mod:`tui.bridge` the only module that
imports trio (the control socket's client in a trio guest run), and one module per screen.
"""
