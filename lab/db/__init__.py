"""PostgreSQL for the Task API: migrations, roles, repositories; see README.md."""
