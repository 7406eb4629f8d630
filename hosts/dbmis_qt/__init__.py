"""The Qt clerk workstation: login, main window, status bar and the pages plugins contribute."""
