-- The indexes the Task API's queries need, each chosen from what
-- `python -m lab.db explain` showed at a million tasks (lab/db/README.md has
-- the plans before and after).
--
-- The list is ordered by (created_at, id), newest first by default, and
-- filtered by at most one of status, user and category: one B-tree per filter,
-- its column first and the sort after it, so PostgreSQL walks the index in
-- order and stops after the page -- no sort, no reading every match. A B-tree
-- is read in both directions, so one index serves `sort=asc` and `sort=desc`.
CREATE INDEX tasks_created_at_idx ON tasks (created_at, id);
CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at, id);
-- These two also serve the foreign keys: deleting a user or a category sets
-- its tasks' link to NULL, which without them reads every task.
CREATE INDEX tasks_user_created_at_idx ON tasks (user_id, created_at, id);
CREATE INDEX tasks_category_created_at_idx ON tasks (category_id, created_at, id);

-- A case-insensitive substring search (`ILIKE '%report%'`) cannot use a
-- B-tree: the pattern does not start with a known prefix. A trigram index
-- (pg_trgm) breaks each text into three-letter pieces and finds the rows that
-- hold every piece of the pattern. The extension lives in `public`, once per
-- database; pg_trgm is a trusted extension, so the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE INDEX tasks_title_trgm_idx ON tasks USING gin (title public.gin_trgm_ops);
CREATE INDEX tasks_description_trgm_idx ON tasks USING gin (description public.gin_trgm_ops);
