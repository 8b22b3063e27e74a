"""Checks of an SQLite store from the outside (the sqlite3 shell)."""
import os
import subprocess


def blob_files_missing(db):
    """Blob rows whose file is not in <db>.blobs: their number."""
    out = subprocess.run(["sqlite3", db, "SELECT file FROM ag_blobs WHERE file IS NOT NULL"],
                         capture_output=True, text=True, check=True)
    return sum(1 for f in out.stdout.split() if not os.path.isfile(os.path.join(db + ".blobs", f)))


def integrity_check(db):
    """PRAGMA integrity_check through the sqlite3 shell: its output, stripped."""
    out = subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip()
