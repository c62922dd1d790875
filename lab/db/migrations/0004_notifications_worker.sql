-- Challenge 5: which worker applied each effect, so that the sharing of the
-- work queue between workers can be seen (python -m lab.queue status counts
-- the notifications by worker). NULL for rows written before this column, or
-- by a caller that gave no name.
ALTER TABLE notifications ADD COLUMN worker text;
