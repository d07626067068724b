-- The statement `closedloop sql` and serve's POST /api/sql are asked to run, as the engine's
-- own parser reads it: exactly one statement, written out in normal form (keywords in
-- upper case, one space apart), or the engine's syntax error.
SELECT formatQuerySingleLine({statement:String}) AS statement
