-- The guard of a one-statement write (platform_messaging::atomic): the guarded statement must
-- have changed exactly one row (the one read, unchanged since), or the whole statement — the
-- domain change and its outbox rows — fails with serialization_failure and nothing commits.
CREATE FUNCTION platform_expect_one(n BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF n <> 1 THEN
        RAISE EXCEPTION 'stale write: the row changed after it was read (% rows matched)', n
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN n;
END
$$;
