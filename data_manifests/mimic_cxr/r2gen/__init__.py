"""Data files (package data); a package only so setuptools ships the folder."""
