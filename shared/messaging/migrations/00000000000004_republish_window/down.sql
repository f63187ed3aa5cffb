DROP TABLE relay_cluster;
DROP TABLE outbox_published;
