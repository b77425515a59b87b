-- sent by test_psql_listen from a second connection
\set VERBOSITY sqlstate
notify ct_psql_other, 'from another connection é';
