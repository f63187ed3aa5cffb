DROP TABLE city_filings;
