"""The Task Management API on lab.http; see README.md."""
