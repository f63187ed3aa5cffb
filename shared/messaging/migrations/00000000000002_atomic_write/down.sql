DROP FUNCTION platform_expect_one(BIGINT);
